#include <azops/docker_parser.hpp>
#include <azops/log_tail.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

using azops::BuildOutcome;
using azops::DockerStepParser;
using Kind = azops::DockerStepEvent::Kind;

namespace {

std::string read_data(const std::string& name) {
    std::ifstream in(std::string(AZOPS_TEST_DATA_DIR) + "/docker/" + name, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "missing test data: " << name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", s);
    std::string text = buf;
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
    return text + "s";
}

std::string render(const azops::DockerStepEvent& e) {
    std::string line =
        std::string(azops::to_string(e.kind)) + " " + std::to_string(e.step) + "/" + std::to_string(e.total);
    if (e.seconds) line += " " + seconds_text(*e.seconds);
    if (e.kind == Kind::step_started || e.kind == Kind::pulling || e.kind == Kind::exporting)
        line += " | " + e.instruction;
    if (!e.message.empty()) line += " -- " + e.message;
    return line;
}

std::vector<std::string> render_state(const DockerStepParser& p) {
    std::vector<std::string> out;
    out.push_back("= format " + std::string(azops::to_string(p.format())));
    char progress[32];
    std::snprintf(progress, sizeof progress, "%.3f", p.progress_fraction());
    out.push_back("= step " + std::to_string(p.step()) + "/" + std::to_string(p.total_steps()) + " progress " +
                  progress + " outcome " + std::string(azops::to_string(p.outcome())) + " phase " + p.phase());
    out.push_back("= instruction " + p.instruction());
    if (!p.error().empty()) out.push_back("= error " + p.error());
    for (const auto& s : p.steps()) {
        std::string line = "= step " + std::to_string(s.index) + " " + (s.stage.empty() ? "" : s.stage + " ") +
                           std::to_string(s.stage_step) + "/" + std::to_string(s.stage_total) + " ";
        line += s.cached ? "cached" : s.done ? "done" : s.failed ? "failed" : s.cancelled ? "cancelled" : "running";
        if (s.duration) line += " " + seconds_text(*s.duration);
        if (s.output_clipped) line += " clipped";
        out.push_back(line);
    }
    return out;
}

// Feeds raw bytes the way a reader of a child's output does: in chunks, split into lines, sanitised.
// `after_line` sees the parser after every line.
template <typename AfterLine>
std::vector<std::string> replay(DockerStepParser& parser, const std::string& raw, const std::vector<std::size_t>& cuts,
                                AfterLine after_line) {
    std::vector<std::string> rendered;
    azops::LineSplitter splitter;
    std::string scratch;
    const auto on_line = [&](std::string_view line) {
        if (parser.feed(azops::sanitize_line_into(line, scratch))) {
            for (const auto& e : parser.take_events()) rendered.push_back(render(e));
        }
        after_line(parser);
    };
    std::size_t at = 0;
    for (const std::size_t cut : cuts) {
        splitter.feed(std::string_view(raw).substr(at, cut - at), on_line);
        at = cut;
    }
    splitter.feed(std::string_view(raw).substr(at), on_line);
    splitter.finish(on_line);
    return rendered;
}

std::vector<std::string> replay_whole(const std::string& raw) {
    DockerStepParser parser(azops::StepTiming::log_only);
    auto lines = replay(parser, raw, {}, [](const DockerStepParser&) {});
    for (auto& line : render_state(parser)) lines.push_back(std::move(line));
    return lines;
}

// Events of `lines` fed one by one, already clean.
std::vector<azops::DockerStepEvent> feed_all(DockerStepParser& p, const std::vector<std::string>& lines,
                                             double now = 0.0) {
    for (const auto& line : lines) p.feed(line, now);
    return p.take_events();
}

std::vector<Kind> kinds(const std::vector<azops::DockerStepEvent>& events) {
    std::vector<Kind> out;
    for (const auto& e : events) out.push_back(e.kind);
    return out;
}

const char* const corpus[] = {
    "legacy_waa",      "legacy_failed", "buildkit_cached",     "buildkit_multistage", "buildkit_waa",
    "buildkit_failed", "buildkit_tty",  "buildkit_tty_failed", "buildkit_noisy",
};

}  // namespace

TEST_CASE("docker corpus: every log gives exactly its expected events and final state") {
    for (const char* name : corpus) {
        CAPTURE(name);
        const auto actual = replay_whole(read_data(std::string(name) + ".log"));
        const auto expected = split_lines(read_data(std::string(name) + ".expected"));
        for (std::size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
            CAPTURE(i + 1);
            CHECK(actual[i] == expected[i]);
        }
        CHECK(actual.size() == expected.size());
    }
}

TEST_CASE("docker corpus: step and progress never go backwards, and stay within their bounds") {
    for (const char* name : corpus) {
        CAPTURE(name);
        DockerStepParser parser(azops::StepTiming::log_only);
        int last_step = 0, last_total = 0;
        double last_progress = 0.0;
        bool ok = true;
        replay(parser, read_data(std::string(name) + ".log"), {}, [&](const DockerStepParser& p) {
            ok = ok && p.step() >= last_step && p.total_steps() >= last_total &&
                 p.progress_fraction() >= last_progress && p.step() <= p.total_steps() &&
                 p.progress_fraction() >= 0.0 && p.progress_fraction() <= 1.0;
            last_step = p.step();
            last_total = p.total_steps();
            last_progress = p.progress_fraction();
        });
        CHECK(ok);
        CHECK(parser.is_docker_build());
    }
}

TEST_CASE("docker corpus: cutting the byte stream anywhere changes nothing") {
    std::mt19937 rng(20240611);
    for (const char* name : corpus) {
        CAPTURE(name);
        const std::string raw = read_data(std::string(name) + ".log");
        const auto whole = replay_whole(raw);
        for (int round = 0; round < 20; ++round) {
            std::vector<std::size_t> cuts;
            std::uniform_int_distribution<std::size_t> where(0, raw.size());
            for (int k = 0; k < 40; ++k) cuts.push_back(where(rng));
            std::sort(cuts.begin(), cuts.end());
            DockerStepParser parser(azops::StepTiming::log_only);
            auto lines = replay(parser, raw, cuts, [](const DockerStepParser&) {});
            for (auto& line : render_state(parser)) lines.push_back(std::move(line));
            CHECK(lines == whole);
        }
    }
}

TEST_CASE("docker corpus: every step that started ends in exactly one way, in order") {
    for (const char* name : corpus) {
        CAPTURE(name);
        DockerStepParser again(azops::StepTiming::log_only);
        azops::LineSplitter splitter;
        std::string scratch;
        const auto on_line = [&](std::string_view line) { again.feed(azops::sanitize_line_into(line, scratch)); };
        splitter.feed(read_data(std::string(name) + ".log"), on_line);
        splitter.finish(on_line);
        const auto events = again.take_events();
        std::map<int, int> started, ended;
        for (const auto& e : events) {
            if (e.kind == Kind::step_started) {
                CHECK(ended[e.step] == 0);
                ++started[e.step];
            }
            if (e.kind == Kind::step_cached || e.kind == Kind::step_finished || e.kind == Kind::step_failed) {
                CHECK(started[e.step] == 1);
                ++ended[e.step];
            }
        }
        for (const auto& [step, count] : started) CHECK(count == 1);
        for (const auto& [step, count] : ended) CHECK(count == 1);
        for (const auto& s : again.steps()) {
            const bool running = !s.done && !s.failed && !s.cancelled;
            CHECK_FALSE(running);  // every corpus build ended
        }
    }
}

TEST_CASE("legacy: a step header gives step, total, instruction and phase") {
    DockerStepParser p;
    CHECK_FALSE(p.is_docker_build());
    CHECK(p.phase().empty());
    CHECK(p.feed("Step 3/8 : RUN apt-get update && apt-get install -y curl", 10.0));
    CHECK(p.is_docker_build());
    CHECK(p.format() == azops::DockerLogFormat::legacy);
    CHECK(p.step() == 3);
    CHECK(p.total_steps() == 8);
    CHECK(p.instruction() == "RUN apt-get update && apt-get install -y curl");
    CHECK(p.phase() == "installing_dependencies");
    const auto events = p.take_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == Kind::step_started);
    CHECK(events[0].step == 3);
    CHECK(events[0].total == 8);
    CHECK(events[0].instruction == "RUN apt-get update && apt-get install -y curl");
    REQUIRE(p.steps().size() == 1);
    CHECK(p.steps()[0].started_at == 10.0);
}

TEST_CASE("legacy: headers that are not docker's are ignored") {
    DockerStepParser p;
    for (const char* line : {"Step 0/3 : FROM x", "Step 4/3 : FROM x", "Step x/3 : FROM x", "Step 1/3: FROM x",
                             "Step 1 : FROM x", "Step 12345678/99999999 : FROM x", "Step 1/"}) {
        CAPTURE(line);
        CHECK_FALSE(p.feed(line));
    }
    CHECK(p.step() == 0);
    CHECK(p.steps().empty());
    // Once the build's total is known, a RUN printing another total is that RUN's own text.
    p.feed("Step 2/9 : RUN ./setup.sh");
    CHECK_FALSE(p.feed("Step 1/3 : configuring locales"));
    CHECK(p.step() == 2);
    CHECK(p.total_steps() == 9);
}

TEST_CASE("legacy: Running in, Using cache, image ids and removed containers") {
    DockerStepParser p;
    const auto events = feed_all(p, {
                                        "Sending build context to Docker daemon  14.34kB",
                                        "Step 1/4 : FROM golang:1.22-alpine",
                                        " ---> 98e6cffc31cc",
                                        "Step 2/4 : RUN apk add curl",
                                        " ---> Running in 8dc705f90042",
                                        "fetch https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/APKINDEX.tar.gz",
                                        " ---> 0123456789ab is not an image id line because of the text after it",
                                        " ---> Removed intermediate container 8dc705f90042",
                                        " ---> 7ea13ef487d2",
                                        "Step 3/4 : WORKDIR /app",
                                        " ---> Using cache",
                                        " ---> cd13e3598053",
                                        "Step 4/4 : COPY . .",
                                        " ---> [Warning] One or more build-args [VERSION] were not consumed",
                                        " ---> 5f0e1d2c3b4a",
                                        "Removing intermediate container 1a2b3c4d5e6f",
                                        "Successfully built 5f0e1d2c3b4a",
                                        "Successfully tagged hello:latest",
                                    });
    CHECK(kinds(events) == std::vector<Kind>{Kind::step_started, Kind::step_finished, Kind::step_started,
                                             Kind::step_finished, Kind::step_started, Kind::step_cached,
                                             Kind::step_started, Kind::step_finished, Kind::build_succeeded});
    CHECK(events.back().message == "5f0e1d2c3b4a");
    CHECK(p.outcome() == BuildOutcome::succeeded);
    CHECK(p.progress_fraction() == 1.0);
    CHECK(p.steps()[2].cached);
    CHECK_FALSE(p.steps()[2].duration.has_value());
}

TEST_CASE("legacy: `Successfully tagged` alone also ends the build") {
    DockerStepParser p;
    feed_all(p, {"Step 1/1 : FROM alpine:3.20", " ---> 1d34ffeaf190", "Successfully tagged tools:latest"});
    CHECK(p.outcome() == BuildOutcome::succeeded);
    const auto events = p.take_events();
    CHECK(events.empty());  // feed_all took them
}

TEST_CASE("legacy: pip's `Successfully built <package>` inside a RUN is not the build's end") {
    DockerStepParser p;
    feed_all(p, {"Step 5/6 : RUN pip install antlr4-python3-runtime==4.9.3", " ---> Running in 6f7a8b9c0d1e",
                 "Successfully built antlr4-python3-runtime", "Successfully tagged is not printed by pip either"});
    CHECK(p.outcome() == BuildOutcome::running);
    DockerStepParser q;
    CHECK_FALSE(q.feed("Successfully built antlr4-python3-runtime"));
    CHECK_FALSE(q.is_docker_build());
}

TEST_CASE("legacy: the tail of a log (`docker build | tail -4`) still tells the outcome") {
    DockerStepParser p;
    feed_all(p, {" ---> Removed intermediate container 0d1e2f3a4b5c", " ---> 2f3e4d5c6b7a",
                 "Successfully built 2f3e4d5c6b7a", "Successfully tagged waa-auto:latest"});
    CHECK(p.format() == azops::DockerLogFormat::legacy);
    CHECK(p.outcome() == BuildOutcome::succeeded);
    CHECK(p.progress_fraction() == 1.0);
}

TEST_CASE("legacy: daemon errors end a build, but not output that merely looks like one") {
    DockerStepParser unknown;
    CHECK_FALSE(unknown.feed("Error response from daemon: No such container: winarena"));
    CHECK(unknown.outcome() == BuildOutcome::running);
    DockerStepParser p;
    p.feed("Sending build context to Docker daemon  2.048kB");
    CHECK(p.feed("Error response from daemon: dockerfile parse error line 4: unknown instruction: RUNN"));
    CHECK(p.outcome() == BuildOutcome::failed);
    CHECK(p.error() == "Error response from daemon: dockerfile parse error line 4: unknown instruction: RUNN");
}

TEST_CASE("legacy: the clock times steps when the log gives no durations") {
    DockerStepParser p;
    p.feed("Step 1/2 : RUN make", 100.0);
    p.feed(" ---> Running in 3c4d5e6f7a8b", 100.5);
    p.feed(" ---> 6e5d4c3b2a19", 142.0);
    p.feed("Step 2/2 : RUN make install", 142.0);
    p.feed("Successfully built 0a1b2c3d4e5f", 150.0);  // the last step ends with the build
    const auto events = p.take_events();
    REQUIRE(events.size() == 5);
    CHECK(events[1].kind == Kind::step_finished);
    CHECK(events[1].seconds == 42.0);
    CHECK(events[3].kind == Kind::step_finished);
    CHECK(events[3].seconds == 8.0);
    CHECK(p.steps()[0].finished_at == 142.0);
    CHECK(p.steps()[0].duration == 42.0);
}

TEST_CASE("legacy: log_only timing leaves clock fields empty") {
    DockerStepParser p(azops::StepTiming::log_only);
    feed_all(p, {"Step 1/1 : RUN make", " ---> 6e5d4c3b2a19"}, 55.0);
    REQUIRE(p.steps().size() == 1);
    CHECK_FALSE(p.steps()[0].started_at.has_value());
    CHECK_FALSE(p.steps()[0].finished_at.has_value());
    CHECK_FALSE(p.steps()[0].duration.has_value());
    CHECK(p.steps()[0].done);
}

TEST_CASE("legacy: a failing RUN fails the step and the build with docker's message") {
    DockerStepParser p;
    const auto events = feed_all(p, {
                                        "Step 1/2 : FROM ubuntu:22.04",
                                        " ---> 52882761a72a",
                                        "Step 2/2 : RUN python3 -c 'print(1)'",
                                        " ---> Running in 7b8c9d0e1f2a",
                                        "ERROR: this is the RUN's own output and no verdict",
                                        "COPY failed: nor is this, printed by the RUN",
                                        "/bin/sh: 1: python3: not found",
                                        "The command '/bin/sh -c python3 -c 'print(1)'' returned a non-zero code: 127",
                                    });
    CHECK(kinds(events) == std::vector<Kind>{Kind::step_started, Kind::step_finished, Kind::step_started,
                                             Kind::step_failed, Kind::build_failed});
    CHECK(p.outcome() == BuildOutcome::failed);
    CHECK(p.error() == "The command '/bin/sh -c python3 -c 'print(1)'' returned a non-zero code: 127");
    CHECK(events.back().step == 2);
    CHECK(p.phase() == "build_failed");
    CHECK(p.steps()[1].failed);
}

TEST_CASE("legacy: the builder's own COPY error fails the build") {
    DockerStepParser p;
    feed_all(p, {"Step 1/3 : FROM alpine", " ---> 1d34ffeaf190", "Step 2/3 : COPY missing.txt /app/",
                 "COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file "
                 "does not exist"});
    CHECK(p.outcome() == BuildOutcome::failed);
    CHECK(p.steps()[1].failed);
    CHECK(p.error().rfind("COPY failed: file not found", 0) == 0);
}

TEST_CASE("legacy: a pull inside FROM is reported and is the phase until the step ends") {
    DockerStepParser p;
    p.feed("Step 1/3 : COPY --from=windowsarena/winarena:latest /entry.sh /entry.sh");
    CHECK(p.phase() == "copying_files");
    p.take_events();
    CHECK(p.feed("latest: Pulling from windowsarena/winarena"));
    const auto events = p.take_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == Kind::pulling);
    CHECK(events[0].message == "windowsarena/winarena:latest");
    CHECK(p.phase() == "pulling_base_image");
    p.feed("a2318d6c47ec: Pull complete");
    CHECK(p.feed("Status: Downloaded newer image for windowsarena/winarena:latest"));
    CHECK(p.phase() == "copying_files");
}

TEST_CASE("BuildKit: step labels in every form docker prints") {
    using azops::detail::docker::parse_step_label;
    struct Case {
        const char* text;
        const char* stage;
        int index, total;
        const char* instruction;
    };
    const Case cases[] = {
        {"[1/3] FROM alpine", "", 1, 3, "FROM alpine"},
        {"[ 1/10] FROM alpine", "", 1, 10, "FROM alpine"},
        {"[10/10] RUN make", "", 10, 10, "RUN make"},
        {"[stage-0  3/21] COPY --from=windowsarena/winarena:latest /client /client", "stage-0", 3, 21,
         "COPY --from=windowsarena/winarena:latest /client /client"},
        {"[stage-0 20/21] RUN pip3 install x", "stage-0", 20, 21, "RUN pip3 install x"},
        {"[builder 3/7] RUN cargo build", "builder", 3, 7, "RUN cargo build"},
        {"[stage-1 2/3] RUN apt-get update", "stage-1", 2, 3, "RUN apt-get update"},
        {"[linux/amd64 2/8] RUN make", "linux/amd64", 2, 8, "RUN make"},
        {"[linux/arm64 builder  2/12] RUN make", "linux/arm64 builder", 2, 12, "RUN make"},
        {"[3/3] RUN [\"/bin/sh\", \"-c\", \"true\"]", "", 3, 3, "RUN [\"/bin/sh\", \"-c\", \"true\"]"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        const auto label = parse_step_label(c.text);
        REQUIRE(label.has_value());
        CHECK(label->stage == c.stage);
        CHECK(label->index == c.index);
        CHECK(label->total == c.total);
        CHECK(label->instruction == c.instruction);
    }
    for (const char* bad : {"[internal] load build definition from Dockerfile", "[auth] library/ubuntu:pull token",
                            "[0/3] RUN x", "[4/3] RUN x", "[a/3] RUN x", "[x3/4] RUN x", "[12345/99999] RUN x",
                            "[/3] RUN x", "[3/] RUN x", "[1/3 RUN x", "1/3] RUN x", "", "["}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_step_label(bad).has_value());
    }
}

TEST_CASE("BuildKit: the common output line changes nothing and is classified fast") {
    DockerStepParser p;
    p.feed("#24 [stage-0 20/21] RUN pip3 install --no-cache-dir gymnasium");
    p.take_events();
    for (const char* line : {"#24 41.07 Collecting gymnasium", "#24 0.057 Downloading x", "#24 1598.9 done",
                             "#24 41.07 [notice] A new release of pip is available", "#24 ...",
                             "#24 [stage-0 20/21] RUN pip3 install --no-cache-dir gymnasium",
                             "#24 sha256:abc 1.15GB / 9.87GB 38.2s", "plain text", "# a comment", "#", "#x y", "#24"}) {
        CAPTURE(line);
        CHECK_FALSE(p.feed(line));
    }
    CHECK(p.take_events().empty());
    CHECK(p.step() == 20);
}

TEST_CASE("BuildKit: DONE carries the duration, CACHED counts as done, ERROR fails the step") {
    DockerStepParser p;
    p.feed("#4 [1/3] FROM docker.io/library/alpine:3.20@sha256:0123", 5.0);
    p.feed("#4 CACHED", 5.0);
    p.feed("#5 [2/3] RUN make", 5.0);
    CHECK(p.progress_fraction() == doctest::Approx(1.0 / 3));
    p.feed("#5 DONE 12.3s", 9.0);  // the log's own time wins over the clock's 4 s
    CHECK(p.progress_fraction() == doctest::Approx(2.0 / 3));
    p.feed("#6 [3/3] RUN make test", 9.0);
    p.feed("#6 ERROR: process \"/bin/sh -c make test\" did not complete successfully: exit code: 2", 11.0);
    const auto events = p.take_events();
    CHECK(kinds(events) == std::vector<Kind>{Kind::step_started, Kind::step_cached, Kind::step_started,
                                             Kind::step_finished, Kind::step_started, Kind::step_failed});
    CHECK(events[3].seconds == doctest::Approx(12.3));
    CHECK(events[5].message == "process \"/bin/sh -c make test\" did not complete successfully: exit code: 2");
    CHECK(events[5].seconds == 2.0);
    CHECK(p.steps()[1].duration == doctest::Approx(12.3));
    CHECK(p.steps()[2].failed);
    CHECK(p.outcome() == BuildOutcome::running);  // the builder's final word decides
    CHECK(
        p.feed("ERROR: failed to solve: process \"/bin/sh -c make test\" did not complete successfully: exit code: 2"));
    CHECK(p.outcome() == BuildOutcome::failed);
    CHECK(p.error() == "failed to solve: process \"/bin/sh -c make test\" did not complete successfully: exit code: 2");
    CHECK(p.progress_fraction() == doctest::Approx(2.0 / 3));
}

TEST_CASE("BuildKit: [internal] and [auth] vertices are not steps") {
    DockerStepParser p;
    CHECK(p.feed("#1 [internal] load build definition from Dockerfile"));
    p.feed("#1 transferring dockerfile: 735B done");
    p.feed("#1 DONE 0.0s");
    p.feed("#2 [auth] library/ubuntu:pull token for registry-1.docker.io");
    p.feed("#3 [linux/amd64 internal] load metadata for docker.io/library/ubuntu:24.04");
    CHECK(p.steps().empty());
    CHECK(p.total_steps() == 0);
    CHECK(p.phase() == "loading_build_context");
    CHECK(p.format() == azops::DockerLogFormat::buildkit_plain);
}

TEST_CASE("BuildKit: the implicit FROM of an image COPY --from names is a pull, not a step") {
    DockerStepParser p;
    p.feed("#4 [internal] load .dockerignore");
    CHECK(p.feed("#5 FROM docker.io/windowsarena/winarena:latest@sha256:7f3e"));
    auto events = p.take_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == Kind::pulling);
    CHECK(events[0].message == "docker.io/windowsarena/winarena:latest@sha256:7f3e");
    CHECK(p.steps().empty());
    CHECK(p.phase() == "pulling_base_image");
    p.feed("#6 [stage-0  1/21] FROM docker.io/dockurr/windows:latest@sha256:4f6e");
    p.feed("#6 CACHED");
    CHECK(p.phase() == "pulling_base_image");  // nothing else runs while the pull goes on
    p.feed("#5 sha256:e1d2 2.31GB / 9.87GB 74.9s");
    p.feed("#5 DONE 414.0s");
    p.feed("#8 [stage-0  2/21] COPY --from=windowsarena/winarena:latest /entry.sh /entry.sh");
    CHECK(p.phase() == "copying_files");
    CHECK(p.step() == 2);
    CHECK(p.total_steps() == 21);
}

TEST_CASE("BuildKit: named stages add their totals — output interleaves — re-printed headers change nothing") {
    DockerStepParser p;
    p.feed("#7 [builder 1/4] FROM docker.io/library/rust:1.79-bookworm");
    CHECK(p.total_steps() == 4);
    p.feed("#8 [stage-1 1/3] FROM docker.io/library/debian:bookworm-slim");
    CHECK(p.total_steps() == 7);
    p.feed("#7 DONE 3.0s");
    p.feed("#8 DONE 1.0s");
    p.feed("#9 [builder 2/4] RUN cargo build --release");
    p.feed("#9 0.512 Compiling libc v0.2.155");
    p.feed("#10 [stage-1 2/3] RUN apt-get update && apt-get install -y ca-certificates");
    CHECK(p.instruction() == "RUN apt-get update && apt-get install -y ca-certificates");
    CHECK(p.phase() == "installing_dependencies");
    p.take_events();
    p.feed("#9 ...");
    CHECK_FALSE(p.feed("#9 [builder 2/4] RUN cargo build --release"));  // the printer came back to #9
    CHECK_FALSE(p.feed("#9 14.20 Compiling azops v0.1.0"));
    CHECK(p.take_events().empty());
    p.feed("#10 DONE 6.2s");
    CHECK(p.instruction() == "RUN cargo build --release");  // the step still running
    CHECK(p.phase() == "running_step");
    p.feed("#9 DONE 71.4s");
    CHECK(p.step() == 4);  // builder 2 + stage-1 2
    CHECK(p.progress_fraction() == doctest::Approx(4.0 / 7));
    const auto& steps = p.steps();
    REQUIRE(steps.size() == 4);
    CHECK(steps[0].index == 1);
    CHECK(steps[1].index == 5);  // stage-1 comes after builder's 4 steps
    CHECK(steps[2].index == 2);
    CHECK(steps[3].index == 6);
    CHECK(steps[3].stage == "stage-1");
}

TEST_CASE("BuildKit: platform prefixes make one stage per platform") {
    DockerStepParser p;
    p.feed("#5 [linux/amd64 1/3] FROM docker.io/library/alpine:3.20");
    p.feed("#6 [linux/arm64 1/3] FROM docker.io/library/alpine:3.20");
    p.feed("#5 DONE 0.4s");
    p.feed("#6 DONE 0.5s");
    p.feed("#7 [linux/amd64 2/3] RUN apk add --no-cache curl");
    CHECK(p.total_steps() == 6);
    CHECK(p.step() == 3);
    CHECK(p.progress_fraction() == doctest::Approx(2.0 / 6));
    CHECK(p.phase() == "installing_dependencies");
}

TEST_CASE("BuildKit: progress never goes backwards when a new stage raises the total") {
    DockerStepParser p;
    p.feed("#5 [builder 1/2] FROM golang");
    p.feed("#5 DONE 1.0s");
    p.feed("#6 [builder 2/2] RUN go build");
    p.feed("#6 DONE 1.0s");
    CHECK(p.progress_fraction() == 1.0);
    p.feed("#7 [stage-1 1/2] FROM debian");  // total 2 → 4: 2/4 would be lower
    CHECK(p.total_steps() == 4);
    CHECK(p.progress_fraction() == 1.0);
    p.feed("#7 DONE 1.0s");
    CHECK(p.progress_fraction() == 1.0);
    CHECK(p.step() == 3);
}

TEST_CASE("BuildKit: a label whose total contradicts its stage is ignored") {
    DockerStepParser p;
    p.feed("#5 [2/5] RUN make");
    CHECK_FALSE(p.feed("#6 [3/9] RUN make install"));
    CHECK(p.total_steps() == 5);
    CHECK(p.steps().size() == 1);
}

TEST_CASE("BuildKit: the end of a vertex whose header the log did not show is ignored") {
    DockerStepParser p;
    for (const char* line : {"#24 DONE 612.4s", "#24 CACHED", "#24 ERROR: boom", "#24 CANCELED", "#24 ..."}) {
        CAPTURE(line);
        CHECK_FALSE(p.feed(line));
    }
    CHECK(p.steps().empty());
    CHECK(p.outcome() == BuildOutcome::running);
}

TEST_CASE("BuildKit: output clipped at the log limit marks the step, which keeps running") {
    DockerStepParser p;
    p.feed("#24 [stage-0 18/21] RUN pip install -r requirements.txt");
    CHECK(p.feed("#24 98.21 [output clipped, log limit 2MiB reached]"));
    CHECK(p.steps()[0].output_clipped);
    CHECK_FALSE(p.steps()[0].done);
    CHECK_FALSE(p.feed("#24 98.21 [output clipped, log limit 2MiB reached]"));
    DockerStepParser older;  // releases that printed no time before log text, and a 1MiB limit
    older.feed("#9 [3/4] RUN make");
    CHECK(older.feed("#9 [output clipped, log limit 1MiB reached]"));
    CHECK(older.steps()[0].output_clipped);
}

TEST_CASE("BuildKit: exporting, then naming to … done is success") {
    DockerStepParser p;
    p.feed("#14 [10/10] RUN chmod +x /usr/local/bin/entrypoint.sh");
    p.feed("#14 DONE 0.3s");
    p.take_events();
    CHECK(p.feed("#15 exporting to image"));
    CHECK(p.phase() == "exporting_image");
    p.feed("#15 exporting layers 0.4s done");
    p.feed("#15 writing image sha256:2919a3f1 done");
    CHECK(p.outcome() == BuildOutcome::running);
    CHECK(p.feed("#15 naming to docker.io/library/waa-auto:latest done"));
    CHECK(p.outcome() == BuildOutcome::succeeded);
    CHECK(p.phase() == "build_succeeded");
    const auto events = p.take_events();
    REQUIRE(events.size() == 2);
    CHECK(events[0].kind == Kind::exporting);
    CHECK(events[1].kind == Kind::build_succeeded);
    CHECK(events[1].message == "docker.io/library/waa-auto:latest");
    CHECK_FALSE(p.feed("#15 DONE 0.5s"));  // success is reported once
}

TEST_CASE("BuildKit: without a tag, the export's DONE is success") {
    DockerStepParser p;
    p.feed("#5 [1/1] FROM alpine");
    p.feed("#5 DONE 0.1s");
    p.feed("#6 exporting to image");
    p.feed("#6 writing image sha256:2919a3f1 done");
    p.feed("#6 DONE 0.2s");
    CHECK(p.outcome() == BuildOutcome::succeeded);
    CHECK(p.progress_fraction() == 1.0);
}

TEST_CASE("BuildKit: an error after success (a failed push) turns the outcome to failed") {
    DockerStepParser p;
    feed_all(p, {"#5 [1/1] FROM alpine", "#5 DONE 0.1s", "#6 exporting to image",
                 "#6 naming to docker.io/acme/tools:1.0 done", "#6 pushing layers"});
    CHECK(p.outcome() == BuildOutcome::succeeded);
    p.feed("#6 ERROR: failed to push docker.io/acme/tools:1.0: unauthorized");
    CHECK(p.outcome() == BuildOutcome::succeeded);  // the builder's final line decides
    CHECK(p.feed("ERROR: failed to solve: failed to push docker.io/acme/tools:1.0: unauthorized"));
    CHECK(p.outcome() == BuildOutcome::failed);
    CHECK(p.progress_fraction() == 1.0);
    const auto events = p.take_events();
    REQUIRE_FALSE(events.empty());
    CHECK(events.back().kind == Kind::build_failed);
}

TEST_CASE("BuildKit: the error block names the failed step when the log lost its #N ERROR line") {
    DockerStepParser p;
    p.feed("#22 [stage-0 15/32] RUN echo ready");
    p.feed("#22 DONE 0.1s");
    p.take_events();
    p.feed("------");
    CHECK(p.feed(" > [stage-0 16/32] RUN python3 -c \"print(1)\":"));
    p.feed("0.211 /bin/sh: 1: python3: not found");
    p.feed("ERROR: this line is inside the block and no verdict");
    CHECK(p.outcome() == BuildOutcome::running);
    p.feed("------");
    p.feed(
        "ERROR: failed to solve: process \"/bin/sh -c python3 -c \\\"print(1)\\\"\" did not complete successfully: "
        "exit code: 127");
    const auto events = p.take_events();
    CHECK(kinds(events) == std::vector<Kind>{Kind::step_started, Kind::step_failed, Kind::build_failed});
    CHECK(events[0].instruction == "RUN python3 -c \"print(1)\"");
    CHECK(events[2].step == 16);
    CHECK(p.step() == 16);
}

TEST_CASE("BuildKit: a failure cancels the steps still running — CANCELED ends a vertex") {
    DockerStepParser p;
    p.feed("#9 [builder 4/7] RUN go build ./...");
    p.feed("#10 [stage-1 2/3] RUN apt-get install -y ca-certificates");
    p.feed("#10 CANCELED");
    CHECK(p.steps()[1].cancelled);
    CHECK(p.instruction() == "RUN go build ./...");
    p.feed("#9 ERROR: process \"/bin/sh -c go build ./...\" did not complete successfully: exit code: 1");
    CHECK(p.steps()[0].failed);
    p.feed("ERROR: failed to solve: process \"/bin/sh -c go build ./...\" did not complete successfully: exit code: 1");
    CHECK(p.outcome() == BuildOutcome::failed);
}

TEST_CASE("BuildKit: older CLIs' final errors") {
    for (const char* line : {"error: failed to solve: rpc error: code = Unknown desc = executor failed running "
                             "[/bin/sh -c false]: exit code: 1",
                             "executor failed running [/bin/sh -c false]: exit code: 1",
                             "failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile "
                             "parse error line 3: unknown instruction: RUNN"}) {
        CAPTURE(line);
        DockerStepParser p;
        p.feed("#5 [2/2] RUN false");
        CHECK(p.feed(line));
        CHECK(p.outcome() == BuildOutcome::failed);
        CHECK_FALSE(p.error().empty());
    }
}

TEST_CASE("BuildKit: before any build output only a clear builder error is taken as a failure") {
    DockerStepParser p;
    CHECK_FALSE(p.feed("ERROR: Could not find a version that satisfies the requirement torch==9.9"));
    CHECK_FALSE(p.feed("error: something unrelated"));
    CHECK(p.outcome() == BuildOutcome::running);
    CHECK(p.feed("ERROR: failed to solve: failed to read dockerfile: open Dockerfile: no such file or directory"));
    CHECK(p.outcome() == BuildOutcome::failed);
    CHECK(p.is_docker_build());
}

TEST_CASE("tty: frames redraw the same steps — each event is reported once") {
    DockerStepParser p;
    const std::vector<std::string> frame1 = {
        "[+] Building 2.9s (9/10)                                           docker:default",
        " => [internal] load build definition from Dockerfile                        0.0s",
        " => CACHED [2/4] WORKDIR /app                                                0.0s",
        " => [3/4] RUN pip install -r requirements.txt                                1.5s",
        " => => # Collecting flask==3.0.3",
    };
    auto events = feed_all(p, frame1);
    CHECK(p.format() == azops::DockerLogFormat::buildkit_tty);
    CHECK(kinds(events) == std::vector<Kind>{Kind::step_started, Kind::step_cached, Kind::step_started});
    CHECK(p.instruction() == "RUN pip install -r requirements.txt");
    CHECK(p.phase() == "installing_dependencies");
    events = feed_all(p, frame1);
    CHECK(events.empty());
    events = feed_all(p, {
                             "[+] Building 9.1s (10/11)",
                             " => CACHED [2/4] WORKDIR /app                                                0.0s",
                             " => [3/4] RUN pip install -r requirements.txt                                7.9s",
                             " => [4/4] COPY . .                                                           0.1s",
                         });
    CHECK(kinds(events) == std::vector<Kind>{Kind::step_finished, Kind::step_started});
    CHECK(events[0].seconds == doctest::Approx(7.9));
    events = feed_all(p, {
                             "[+] Building 9.9s (11/11) FINISHED",
                             " => CACHED [2/4] WORKDIR /app                                                0.0s",
                             " => [3/4] RUN pip install -r requirements.txt                                7.9s",
                             " => [4/4] COPY . .                                                           0.2s",
                             " => exporting to image                                                       0.3s",
                             " => => naming to docker.io/library/webapp:latest                             0.0s",
                         });
    CHECK(kinds(events) == std::vector<Kind>{Kind::step_finished, Kind::exporting, Kind::build_succeeded});
    CHECK(events[0].seconds == doctest::Approx(0.2));
    CHECK(p.outcome() == BuildOutcome::succeeded);
    CHECK(p.step() == 4);
    CHECK(p.total_steps() == 4);
}

TEST_CASE("tty: exporting in a frame that is not the last is not yet success") {
    DockerStepParser p;
    feed_all(p, {"[+] Building 3.0s (6/7)", " => [1/1] FROM docker.io/library/alpine  0.1s",
                 " => exporting to image                     0.0s"});
    CHECK(p.outcome() == BuildOutcome::running);
    CHECK(p.phase() == "exporting_image");
    CHECK(p.steps()[0].done);
}

TEST_CASE("tty: ERROR and CANCELED lines, clipped output") {
    DockerStepParser p;
    feed_all(p, {
                    "[+] Building 4.2s (9/12)",
                    " => [build 3/5] RUN npm ci                                     4.0s",
                    " => => # [output clipped, log limit 2MiB reached]",
                    " => [stage-1 2/3] RUN apt-get install -y nginx                 3.9s",
                });
    CHECK(p.steps()[0].output_clipped);
    CHECK_FALSE(p.steps()[1].output_clipped);
    feed_all(p, {
                    "[+] Building 4.9s (10/12) FINISHED",
                    " => ERROR [build 3/5] RUN npm ci                               4.6s",
                    " => CANCELED [stage-1 2/3] RUN apt-get install -y nginx        4.5s",
                    "------",
                    " > [build 3/5] RUN npm ci:",
                    "------",
                    "ERROR: failed to solve: process \"/bin/sh -c npm ci\" did not complete successfully: exit code: 1",
                });
    CHECK(p.steps()[0].failed);
    CHECK(p.steps()[0].duration == doctest::Approx(4.6));
    CHECK(p.steps()[1].cancelled);
    CHECK(p.outcome() == BuildOutcome::failed);
    CHECK(p.total_steps() == 8);
}

TEST_CASE("phase: from what the build is doing") {
    CHECK(azops::docker_phase_for_instruction("FROM python:3.11-slim") == "pulling_base_image");
    CHECK(azops::docker_phase_for_instruction("from python:3.11-slim AS base") == "pulling_base_image");
    CHECK(azops::docker_phase_for_instruction("COPY . /app") == "copying_files");
    CHECK(azops::docker_phase_for_instruction("ADD https://example.com/x.tar.gz /opt/") == "copying_files");
    CHECK(azops::docker_phase_for_instruction("RUN apt-get update && apt-get -y install curl") ==
          "installing_dependencies");
    CHECK(azops::docker_phase_for_instruction("RUN python3 -m pip install --no-cache-dir -r r.txt") ==
          "installing_dependencies");
    CHECK(azops::docker_phase_for_instruction("RUN --mount=type=cache,target=/root/.cache uv pip install x") ==
          "installing_dependencies");
    CHECK(azops::docker_phase_for_instruction("RUN /opt/venv/bin/pip install x") == "installing_dependencies");
    CHECK(azops::docker_phase_for_instruction("RUN cd /web&&npm ci") == "installing_dependencies");
    CHECK(azops::docker_phase_for_instruction("RUN apk add --no-cache git") == "installing_dependencies");
    CHECK(azops::docker_phase_for_instruction("RUN /opt/venv/bin/playwright install --with-deps chromium") ==
          "installing_dependencies");
    CHECK(azops::docker_phase_for_instruction("RUN npm run build") == "running_step");
    CHECK(azops::docker_phase_for_instruction("RUN cargo build --release") == "running_step");
    CHECK(azops::docker_phase_for_instruction("RUN echo pip install is documented in README") == "running_step");
    CHECK(azops::docker_phase_for_instruction("RUN sed -i 's/a/b/' /run/entry.sh") == "running_step");
    CHECK(azops::docker_phase_for_instruction("ENV YRES=900 XRES=1440") == "configuring_image");
    CHECK(azops::docker_phase_for_instruction("ONBUILD COPY . /src") == "copying_files");
    CHECK(azops::docker_phase_for_instruction("") == "");

    DockerStepParser p;
    CHECK(p.phase().empty());
    p.feed("#0 building with \"default\" instance using docker driver");
    CHECK(p.phase() == "starting");
    p.feed("#1 [internal] load build definition from Dockerfile");
    CHECK(p.phase() == "loading_build_context");
    p.feed("#5 [1/2] FROM docker.io/library/python:3.11-slim");
    CHECK(p.phase() == "pulling_base_image");
    p.feed("#5 DONE 3.0s");
    CHECK(p.phase() == "pulling_base_image");  // between steps, the last step's phase stays
    p.feed("#6 [2/2] COPY . /app");
    CHECK(p.phase() == "copying_files");
}

TEST_CASE("output that is not a docker build leaves the parser untouched") {
    DockerStepParser p;
    for (const char* line :
         {"Hello", "Step right up", "  indented", "- list", "[notice] pip", "#!/bin/sh", "ERROR: pip could not install",
          "Successfully installed flask-3.0.3", "Status: ok", "The command completed"}) {
        CAPTURE(line);
        CHECK_FALSE(p.feed(line));
    }
    CHECK_FALSE(p.is_docker_build());
    CHECK(p.take_events().empty());
    CHECK(p.outcome() == BuildOutcome::running);
}

TEST_CASE("bounds: events wait in a bounded queue — steps, stages and vertices are capped") {
    DockerStepParser p;
    for (int stage = 0; stage < 3000; ++stage) {
        p.feed("#" + std::to_string(stage + 1) + " [s" + std::to_string(stage) + " 1/1] RUN true");
        p.feed("#" + std::to_string(stage + 1) + " DONE 0.1s");
    }
    CHECK(p.steps().size() == azops::detail::docker::max_stages);
    CHECK(p.total_steps() == static_cast<int>(azops::detail::docker::max_stages));

    DockerStepParser q;  // nobody takes the events
    for (int k = 1; k <= 9999; ++k) q.feed("#" + std::to_string(k) + " [" + std::to_string(k) + "/9999] RUN true");
    CHECK(q.steps().size() == azops::detail::docker::max_steps);
    CHECK(q.step() == static_cast<int>(azops::detail::docker::max_steps));
    const auto events = q.take_events();
    CHECK(events.size() == azops::detail::docker::max_pending_events);
    CHECK(q.dropped_events() == azops::detail::docker::max_steps - azops::detail::docker::max_pending_events);
    CHECK(events.back().kind == Kind::step_started);
    CHECK(events.back().step == static_cast<int>(azops::detail::docker::max_steps));
    CHECK(q.take_events().empty());

    DockerStepParser r;
    CHECK_FALSE(r.feed("#99999999 [1/2] RUN true"));  // no vertex number docker prints
    const std::string huge(100000, 'x');
    r.feed("#1 [1/2] RUN " + huge);
    REQUIRE(r.steps().size() == 1);
    CHECK(r.steps()[0].instruction.size() <= azops::detail::docker::max_text);
}

TEST_CASE("bounded text never splits a UTF-8 sequence") {
    std::string text(azops::detail::docker::max_text - 1, 'a');
    text += "\xE2\x9D\xAF";  // a 3-byte character across the bound
    const std::string bounded = azops::detail::docker::bounded_text(text);
    CHECK(bounded.size() == azops::detail::docker::max_text - 1);
    CHECK(azops::sanitize_line(bounded) == bounded);
}

TEST_CASE("feed returns whether the visible state changed") {
    DockerStepParser p;
    CHECK_FALSE(p.feed(""));
    CHECK(p.feed("#5 [1/2] RUN make"));
    CHECK_FALSE(p.feed("#5 0.100 cc -c main.c"));
    CHECK(p.feed("#5 DONE 1.0s"));
    CHECK_FALSE(p.feed("#5 DONE 1.0s"));
}
