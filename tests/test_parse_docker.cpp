#include "../examples/azops_cli/parse_docker.hpp"

#include "test_helpers.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <vector>

namespace {

std::string docker_log_path(const std::string& name) { return std::string(AZOPS_TEST_DATA_DIR) + "/docker/" + name; }

std::string read_data_file(const std::string& name) { return azops_test::read_file(docker_log_path(name)); }

struct ParseRun {
    int exit_code = -1;
    std::vector<nlohmann::json> lines;
    std::string err;

    const nlohmann::json& summary() const { return lines.back(); }
    std::vector<nlohmann::json> events() const { return {lines.begin(), lines.end() - 1}; }
};

ParseRun run(std::istream& in) {
    std::ostringstream out, err;
    ParseRun result;
    result.exit_code = azops_cli::run_parse_docker(in, out, err);
    result.err = err.str();
    std::istringstream printed(out.str());
    for (std::string line; std::getline(printed, line);) {
        result.lines.push_back(nlohmann::json::parse(line));  // throws, failing the test, on a bad line
    }
    return result;
}

ParseRun run_file(const std::string& name) {
    std::ifstream in(docker_log_path(name), std::ios::binary);
    return run(in);
}

ParseRun run_text(const std::string& text) {
    std::istringstream in(text);
    return run(in);
}

// The number of event lines of NAME.expected (the lines before its `= ` state lines).
std::size_t expected_event_count(const std::string& name) {
    std::ifstream in(docker_log_path(name + ".expected"));
    std::size_t count = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("= ", 0) != 0) ++count;
    }
    return count;
}

// A stream whose reads fail part-way, as a disk error or a vanished network file would.
class FailingBuffer : public std::streambuf {
protected:
    int_type underflow() override {
        if (served_) throw std::runtime_error("EIO");
        served_ = true;
        setg(text_, text_, text_ + sizeof text_ - 1);
        return traits_type::to_int_type(text_[0]);
    }

private:
    char text_[28] = "#5 [1/2] FROM alpine\n#5 DON";
    bool served_ = false;
};

// What run_parse_docker must print, computed the plain way: every line split by LineSplitter and
// sanitised by sanitize_line_into.
std::string reference_output(const std::string& raw) {
    azops::DockerStepParser parser(azops::StepTiming::log_only);
    azops::LineSplitter splitter;
    std::string scratch, out;
    std::size_t lines = 0;
    const auto on_line = [&](std::string_view line) {
        ++lines;
        if (!parser.feed(azops::sanitize_line_into(line, scratch))) return;
        for (const auto& e : parser.take_events())
            out += azops_cli::parse_docker_detail::to_json_line(azops_cli::parse_docker_detail::event_json(e)) + "\n";
    };
    splitter.feed(raw, on_line);
    splitter.finish(on_line);
    return out + azops_cli::parse_docker_detail::to_json_line(azops_cli::parse_docker_detail::summary_json(parser, lines)) + "\n";
}

std::string output_with_block_size(const std::string& raw, std::size_t block_size) {
    std::istringstream in(raw);
    std::ostringstream out, err;
    azops_cli::parse_docker_detail::run(in, out, err, block_size);
    return out.str();
}

// Build-log-like text with what makes lines special: ANSI, tabs, CR, bytes >= 0x80, DEL, NUL, empty
// lines, lines around 16-byte boundaries and over max_line_bytes.
std::string random_log(std::mt19937& rng, std::size_t lines) {
    const std::vector<std::string> pieces = {"#5 [1/3] FROM alpine",
                                             "#5 DONE 0.1s",
                                             "#6 [2/3] RUN apk add curl",
                                             "#6 0.512 fetch https://x",
                                             "#6 DONE 1.2s",
                                             "#7 [3/3] COPY . .",
                                             "#7 CACHED",
                                             "#8 exporting to image",
                                             "#8 naming to docker.io/library/x done",
                                             "\x1b[1m\x1b[32mok\x1b[0m",
                                             "\t",
                                             "\r",
                                             "\xc3\xa9",
                                             "\xe9",
                                             "\x7f",
                                             std::string(1, '\0'),
                                             "0123456789abcdef",
                                             " "};
    std::string text;
    std::uniform_int_distribution<std::size_t> piece(0, pieces.size() - 1), count(0, 6), shape(0, 30);
    for (std::size_t i = 0; i < lines; ++i) {
        const std::size_t kind = shape(rng);
        if (kind == 0) text += std::string(4090 + count(rng) * 3, 'x');  // around max_line_bytes
        for (std::size_t k = count(rng); k > 0; --k) text += pieces[piece(rng)];
        text += '\n';
    }
    return text;
}

}  // namespace

TEST_CASE("parse docker: the WAA build prints its events in order, then a summary") {
    const ParseRun r = run_file("buildkit_waa.log");
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    REQUIRE(r.lines.size() == expected_event_count("buildkit_waa") + 1);
    const auto events = r.events();
    CHECK(events.front() == nlohmann::json::parse(R"({"event":"pulling","step":0,"total":0,
        "instruction":"FROM docker.io/windowsarena/winarena:latest@sha256:7f3e9a1c5b2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7",
        "message":"docker.io/windowsarena/winarena:latest@sha256:7f3e9a1c5b2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"})"));
    CHECK(events[1] == nlohmann::json::parse(R"({"event":"step_started","step":1,"total":21,
        "instruction":"FROM docker.io/dockurr/windows:latest@sha256:4f6e1a0c9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29"})"));
    CHECK(events[2] == nlohmann::json::parse(R"({"event":"step_cached","step":1,"total":21,
        "instruction":"FROM docker.io/dockurr/windows:latest@sha256:4f6e1a0c9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29"})"));
    CHECK(events.back() ==
          nlohmann::json::parse(
              R"({"event":"build_succeeded","step":21,"total":21,"message":"docker.io/library/waa-auto:latest"})"));

    const auto& s = r.summary();
    CHECK(s["event"] == "summary");
    CHECK(s["docker_build"] == true);
    CHECK(s["format"] == "buildkit_plain");
    CHECK(s["lines"] == 126);
    CHECK(s["step"] == 21);
    CHECK(s["total"] == 21);
    CHECK(s["cached"] == 1);
    CHECK(s["progress"] == 1.0);
    CHECK(s["phase"] == "build_succeeded");
    CHECK(s["outcome"] == "succeeded");
    CHECK(s["error"].is_null());
    REQUIRE(s["steps"].size() == 21);
    CHECK(s["steps"][0]["state"] == "cached");
    CHECK(s["steps"][0]["seconds"].is_null());
    const auto& pip = s["steps"][17];
    CHECK(pip["step"] == 18);
    CHECK(pip["stage"] == "stage-0");
    CHECK(pip["stage_step"] == 18);
    CHECK(pip["stage_total"] == 21);
    CHECK(pip["instruction"] == "RUN /opt/venv/bin/pip install --no-cache-dir -r /client/requirements.txt");
    CHECK(pip["state"] == "done");
    CHECK(pip["seconds"] == 612.4);
    CHECK(pip["output_clipped"] == true);
}

TEST_CASE("parse docker: failed builds exit 1 with the builder's error") {
    for (const char* name : {"buildkit_failed", "legacy_failed", "buildkit_tty_failed"}) {
        CAPTURE(name);
        const ParseRun r = run_file(std::string(name) + ".log");
        CHECK(r.exit_code == 1);
        REQUIRE(r.lines.size() == expected_event_count(name) + 1);
        CHECK(r.summary()["outcome"] == "failed");
        CHECK(r.summary()["phase"] == "build_failed");
        CHECK(r.summary()["error"].is_string());
        CHECK(r.events().back()["event"] == "build_failed");
        CHECK(r.events().back()["message"] == r.summary()["error"]);
    }
    const ParseRun legacy = run_file("legacy_failed.log");
    CHECK(legacy.summary()["error"] ==
          "The command '/bin/sh -c python3 -c \"import sys; print(sys.version)\"' returned a non-zero code: 127");
    CHECK(legacy.summary()["steps"][3]["state"] == "failed");
}

TEST_CASE("parse docker: a log that shows a failed step exits 1 even when it ends before the verdict") {
    const ParseRun r = run_text(
        "#5 [2/3] RUN make\n#5 ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2\n");
    CHECK(r.exit_code == 1);
    CHECK(r.summary()["outcome"] == "running");
    CHECK(r.summary()["steps"][0]["state"] == "failed");
}

TEST_CASE("parse docker: every corpus log gives valid JSON lines and the same events as the parser") {
    for (const char* name :
         {"legacy_waa", "buildkit_cached", "buildkit_multistage", "buildkit_tty", "buildkit_noisy"}) {
        CAPTURE(name);
        const ParseRun r = run_file(std::string(name) + ".log");
        CHECK(r.exit_code == 0);
        CHECK(r.lines.size() == expected_event_count(name) + 1);
        CHECK(r.summary()["outcome"] == "succeeded");
        for (const auto& event : r.events()) {
            CHECK(event["step"].is_number_integer());
            CHECK(event["total"].is_number_integer());
            if (event.contains("seconds")) CHECK(event["seconds"].is_number());
        }
    }
}

TEST_CASE("parse docker: a legacy log has no durations, and says so with null") {
    const ParseRun r = run_file("legacy_waa.log");
    CHECK(r.summary()["format"] == "legacy");
    for (const auto& step : r.summary()["steps"]) CHECK(step["seconds"].is_null());
    for (const auto& event : r.events()) CHECK_FALSE(event.contains("seconds"));
}

TEST_CASE("parse docker: the 1 MB line is one line, cut, and the log after it still parses") {
    const ParseRun r = run_file("buildkit_noisy.log");
    CHECK(r.summary()["lines"] == 45);
    CHECK(r.summary()["step"] == 4);
    CHECK(r.summary()["steps"][2]["seconds"] == 20.3);
}

TEST_CASE("parse docker: the last line needs no newline — CRLF line endings are fine") {
    const ParseRun r = run_text("Step 1/1 : FROM alpine:3.20\r\n ---> 1d34ffeaf190\r\nSuccessfully built 1d34ffeaf190");
    CHECK(r.exit_code == 0);
    CHECK(r.summary()["outcome"] == "succeeded");
    CHECK(r.summary()["lines"] == 3);
}

TEST_CASE("parse docker: input that is no docker build parses, and says so") {
    const ParseRun empty = run_text("");
    CHECK(empty.exit_code == 0);
    REQUIRE(empty.lines.size() == 1);
    CHECK(empty.summary()["docker_build"] == false);
    CHECK(empty.summary()["lines"] == 0);
    CHECK(empty.summary()["phase"] == "");
    CHECK(empty.err.find("no docker build output recognised") != std::string::npos);

    const ParseRun other = run_text("hello\nworld\n");
    CHECK(other.exit_code == 0);
    CHECK(other.summary()["docker_build"] == false);
    CHECK(other.summary()["lines"] == 2);
}

TEST_CASE("parse docker: unreadable input exits 2") {
    std::ifstream missing(docker_log_path("no_such_file.log"), std::ios::binary);
    std::ostringstream out, err;
    CHECK(azops_cli::run_parse_docker(missing, out, err) == 2);
    CHECK(out.str().empty());
    CHECK(err.str().find("cannot read") != std::string::npos);

    azops_test::ScratchDir dir;
    std::ifstream directory(dir.path(), std::ios::binary);
    std::ostringstream out2, err2;
    CHECK(azops_cli::run_parse_docker(directory, out2, err2) == 2);

    FailingBuffer failing;
    std::istream broken(&failing);
    std::ostringstream out3, err3;
    CHECK(azops_cli::run_parse_docker(broken, out3, err3) == 2);
    CHECK(err3.str().find("reading the input failed") != std::string::npos);
}

TEST_CASE("parse docker: line ends and plain lines are found right at every offset") {
    std::mt19937 rng(7);
    const std::string raw = random_log(rng, 400);
    std::vector<std::pair<std::string, bool>> found;
    azops_cli::parse_docker_detail::for_each_line(raw,
                                       [&](std::string_view line, bool plain) { found.emplace_back(line, plain); });
    std::vector<std::pair<std::string, bool>> expected;
    std::size_t start = 0;
    for (std::size_t nl = raw.find('\n'); nl != std::string::npos; start = nl + 1, nl = raw.find('\n', start)) {
        const std::string line = raw.substr(start, nl - start);
        const bool printable = std::all_of(line.begin(), line.end(), [](char c) { return c >= 0x20 && c < 0x7F; });
        expected.emplace_back(line, printable);
    }
    REQUIRE(found.size() == expected.size());
    for (std::size_t i = 0; i < found.size(); ++i) {
        CAPTURE(i);
        CHECK(found[i].first == expected[i].first);
#if defined(__SSE2__)
        CHECK(found[i].second == expected[i].second);
#else
        CHECK_FALSE(found[i].second);  // every line goes through sanitize_line_into
#endif
    }
}

TEST_CASE("parse docker: a plain line is its own sanitised form, as the fast path assumes") {
    for (const char* line : {"#24 41.07 Collecting gymnasium", " => [2/5] RUN make   3.2s", "", "~ !\"#$%&'()*+,-./"}) {
        std::string scratch;
        const std::string_view clean = azops::sanitize_line_into(line, scratch);
        CHECK(clean == line);
    }
    const std::string longest(azops::max_line_bytes, 'a');
    std::string scratch;
    CHECK(azops::sanitize_line_into(longest, scratch) == longest);
}

TEST_CASE("parse docker: the output does not depend on where reads cut the input") {
    std::mt19937 rng(11);
    std::vector<std::string> inputs = {read_data_file("buildkit_tty.log"), read_data_file("legacy_waa.log"),
                                       read_data_file("buildkit_multistage.log")};
    for (int i = 0; i < 4; ++i) inputs.push_back(random_log(rng, 300));
    inputs.push_back(random_log(rng, 50) + "#9 [1/1] RUN no newline at the end");
    for (const auto& raw : inputs) {
        const std::string expected = reference_output(raw);
        for (const std::size_t block : {std::size_t{1}, std::size_t{7}, std::size_t{16}, std::size_t{17},
                                        std::size_t{100}, std::size_t{4096}, std::size_t{1} << 20}) {
            CAPTURE(block);
            CHECK(output_with_block_size(raw, block) == expected);
        }
    }
}
