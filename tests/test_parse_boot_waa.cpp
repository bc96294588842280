// `azops parse-boot` / `azops parse-waa`: saved logs in, JSON lines and an exit code out.
#include "../examples/azops_cli/parse_boot_waa.hpp"

#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <vector>

namespace {

struct CliResult {
    int code = -1;
    std::vector<nlohmann::json> lines;  // every stdout line, parsed
    std::string err;

    const nlohmann::json& summary() const { return lines.back(); }

    std::vector<nlohmann::json> with_event(const std::string& name) const {
        std::vector<nlohmann::json> out;
        for (const auto& j : lines) {
            if (j.at("event") == name) out.push_back(j);
        }
        return out;
    }
};

template <typename Run>
CliResult run(Run&& command, std::istream& in) {
    std::ostringstream out, err;
    CliResult r;
    r.code = command(in, out, err);
    r.err = err.str();
    std::istringstream lines(out.str());
    for (std::string line; std::getline(lines, line);) {
        INFO("stdout line: " << line);
        REQUIRE(nlohmann::json::accept(line));
        r.lines.push_back(nlohmann::json::parse(line));
    }
    return r;
}

template <typename Run>
CliResult run_text(Run&& command, const std::string& text) {
    std::istringstream in(text);
    return run(command, in);
}

template <typename Run>
CliResult run_file(Run&& command, const std::string& relative) {
    std::ifstream in(std::string(AZOPS_TEST_DATA_DIR) + "/" + relative, std::ios::binary);
    REQUIRE_MESSAGE(in.is_open(), "missing test log " << relative);
    return run(command, in);
}

const auto parse_boot = [](std::istream& in, std::ostream& out, std::ostream& err) { return azops_cli::run_parse_boot(in, out, err); };
const auto parse_waa = [](std::istream& in, std::ostream& out, std::ostream& err) { return azops_cli::run_parse_waa(in, out, err); };

// Hands out `good` bytes, then fails as a disk or pipe read error would.
class FailingBuf : public std::streambuf {
public:
    explicit FailingBuf(std::string good) : good_(std::move(good)) {
        setg(good_.data(), good_.data(), good_.data() + good_.size());
    }

protected:
    int_type underflow() override { throw std::runtime_error("read error"); }

private:
    std::string good_;
};

}  // namespace

TEST_CASE("parse-boot: a first boot prints its phases in order and a summary, exit 0") {
    const CliResult r = run_file(parse_boot, "boot/first_boot.log");
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    std::vector<std::string> phases;
    for (const auto& j : r.with_event("phase")) phases.push_back(j.at("phase"));
    CHECK(phases == std::vector<std::string>{"downloading_windows", "extracting_image", "adding_drivers",
                                             "building_image", "creating_disk", "booting_qemu", "windows_started"});
    const auto progress = r.with_event("progress");
    double previous_pct = -1;
    for (const auto& j : progress) {
        if (!j.at("download_pct").is_number()) continue;
        CHECK(j.at("download_pct").get<double>() >= previous_pct);
        previous_pct = j.at("download_pct").get<double>();
    }
    CHECK(previous_pct == 99.0);  // the 100% row arrives glued to the next phase's line
    const auto half = std::find_if(progress.begin(), progress.end(), [](const nlohmann::json& j) {
        return j.at("download_pct") == 50.0;
    });
    REQUIRE(half != progress.end());
    CHECK(half->at("step") == 1);
    CHECK(half->at("download_eta_seconds").is_number());

    const nlohmann::json& s = r.summary();
    CHECK(s.at("event") == "summary");
    CHECK(s.at("is_boot_log") == true);
    CHECK(s.at("phase") == "windows_started");
    CHECK(s.at("step") == 7);
    CHECK(s.at("total_steps") == 7);
    CHECK(s.at("progress") == 1.0);
    CHECK(s.at("vnc_hint_url") == "http://127.0.0.1:8006/");
    CHECK(s.at("error").is_null());
    CHECK(s.at("lines") == 212);
}

TEST_CASE("parse-boot: a boot that ran out of disk space exits 1 with the container's error") {
    const CliResult r = run_file(parse_boot, "boot/no_free_space.log");
    CHECK(r.code == 1);
    const auto phases = r.with_event("phase");
    REQUIRE(!phases.empty());
    CHECK(phases.back().at("phase") == "failed");
    CHECK(r.summary().at("error") == "Not enough free space in /storage, have 5 GB available but need at least 7 GB.");
    CHECK(r.summary().at("step") == 2);
}

TEST_CASE("parse-boot: a boot that recovered from an error and then started exits 0") {
    const CliResult r = run_text(parse_boot, "\xE2\x9D\xAF ERROR: Microsoft blocked the automated download request.\n"
                                             "\xE2\x9D\xAF Downloading Windows 11 from files.example.net...\n"
                                             "\xE2\x9D\xAF Booting Windows using QEMU v9.2.2...\n"
                                             "\xE2\x9D\xAF Windows started successfully, visit http://127.0.0.1:8006/ to view the screen...");
    CHECK(r.code == 0);  // the last line has no newline and still counts
    CHECK(r.summary().at("phase") == "windows_started");
}

TEST_CASE("parse-boot: raw bytes (colours, CRLF, invalid UTF-8) still give valid JSON") {
    const CliResult r = run_text(parse_boot, "\x1b[1;34m\xE2\x9D\xAF \x1b[1;36mStarting Windows for Docker v4.35...\x1b[0m\r\n"
                                             "\x1b[1;31m\xE2\x9D\xAF ERROR: disk \xff\xfe unreadable\x1b[0m\r\n");
    CHECK(r.code == 1);
    CHECK(r.summary().at("error") == "disk \xEF\xBF\xBD\xEF\xBF\xBD unreadable");
}

TEST_CASE("parse-boot: input that is not a boot log exits 0, says so, and reports nothing") {
    const CliResult r = run_text(parse_boot, "hello\nStep 1/30 : FROM dockurr/windows:latest\n");
    CHECK(r.code == 0);
    CHECK(r.err.find("no dockurr/windows boot lines found") != std::string::npos);
    REQUIRE(r.lines.size() == 1);
    CHECK(r.summary().at("is_boot_log") == false);
    CHECK(r.summary().at("phase") == "waiting_for_container");
    CHECK(r.summary().at("lines") == 2);
}

TEST_CASE("parse-boot and parse-waa: an unreadable input exits 2") {
    SUBCASE("a file that cannot be opened") {
        std::ifstream missing(std::string(AZOPS_TEST_DATA_DIR) + "/boot/no-such-log.log");
        const CliResult boot = run(parse_boot, missing);
        CHECK(boot.code == 2);
        CHECK(boot.err.find("cannot read the log") != std::string::npos);
        CHECK(boot.lines.empty());
    }
    SUBCASE("a read error part-way") {
        FailingBuf buf("\xE2\x9D\xAF Booting Windows using QEMU v9.2.2...\n");
        std::istream in(&buf);
        const CliResult boot = run(parse_boot, in);
        CHECK(boot.code == 2);
        CHECK(boot.err.find("azops parse-boot: cannot read the log") != std::string::npos);
    }
    SUBCASE("the same for parse-waa") {
        FailingBuf buf("[Example ID]: a-WOS\n");
        std::istream in(&buf);
        const CliResult waa = run(parse_waa, in);
        CHECK(waa.code == 2);
        CHECK(waa.err.find("azops parse-waa: cannot read the log") != std::string::npos);
    }
}

TEST_CASE("parse-waa: a finished run prints each task's start and end, the end of the benchmark, exit 0") {
    const CliResult r = run_file(parse_waa, "waa/small_run.log");
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    const auto started = r.with_event("task_started");
    const auto finished = r.with_event("task_finished");
    REQUIRE(started.size() == 13);
    REQUIRE(finished.size() == 13);
    CHECK(started[0].at("task") == 1);
    CHECK(started[0].at("total") == 13);
    CHECK(started[0].at("domain") == "notepad");
    CHECK(started[0].at("task_id") == "f150e2bc-3a90-4d26-ac22-337ac7852b1c-WOS");
    CHECK(started[0].at("log_time") == "2026-01-28 22:54:57,605");
    CHECK(finished[0].at("result") == 1.0);
    CHECK(finished[0].at("success") == true);
    CHECK(finished[5].at("result").is_null());
    CHECK(finished[5].at("error").is_string());
    const auto end = r.with_event("benchmark_finished");
    REQUIRE(end.size() == 1);
    CHECK(end[0].at("average_score") == 0.4166666666666667);
    std::vector<std::string> phases;
    for (const auto& j : r.with_event("phase")) phases.push_back(j.at("phase"));
    CHECK(phases.front() == "waiting_for_server");
    CHECK(phases.back() == "finished");

    const nlohmann::json& s = r.summary();
    CHECK(s.at("tasks_done") == 13);
    CHECK(s.at("total_tasks") == 13);
    CHECK(s.at("successes") == 5);
    CHECK(s.at("failures") == 8);
    CHECK(s.at("average_score") == 0.4166666666666667);
    CHECK(s.at("last_result") == 0.0);
    CHECK(s.at("progress") == 1.0);
    CHECK(s.at("error").is_null());
    CHECK(s.at("is_waa_log") == true);
}

TEST_CASE("parse-waa: a run ended by a traceback exits 1 with the exception") {
    const CliResult r = run_file(parse_waa, "waa/interrupted_traceback.log");
    CHECK(r.code == 1);
    CHECK(r.summary().at("phase") == "failed");
    CHECK(r.summary().at("error").get<std::string>().rfind("FileNotFoundError: [Errno 2]", 0) == 0);
    CHECK(r.summary().at("tasks_done") == 4);
    CHECK(r.summary().at("total_tasks") == 12);
    CHECK(r.summary().at("average_score").is_null());
}

TEST_CASE("parse-waa: input that is not a WAA log exits 0 and says so") {
    const CliResult r = run_text(parse_waa, "Task 1/10\nResult: PASS\n");
    CHECK(r.code == 0);
    CHECK(r.err.find("no Windows Agent Arena lines found") != std::string::npos);
    CHECK(r.summary().at("tasks_done") == 0);
    CHECK(r.summary().at("phase") == "waiting");
}
