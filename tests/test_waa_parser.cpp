#include <azops/log_tail.hpp>
#include <azops/waa_parser.hpp>

#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <optional>
#include <string>
#include <vector>

using azops::WaaEvent;
using azops::WaaEventKind;
using azops::WaaLogParser;

namespace {

// The parser's view after one line of a log.
struct Seen {
    std::string line;  // sanitised
    std::string phase;
    int done = 0;
    int total = 0;
    int step = 0;
    double progress = 0;
    std::optional<std::string> error;
    std::string detail;
    std::string task_id;
    std::string domain;
};

struct Replay {
    WaaLogParser parser;
    std::vector<Seen> seen;
    std::vector<WaaEvent> events;

    const Seen& at(const std::string& part, int occurrence = 1) const {
        for (const auto& s : seen) {
            if (s.line.find(part) != std::string::npos && --occurrence == 0) return s;
        }
        FAIL("no line contains: " << part);
        return seen.front();
    }

    std::vector<WaaEvent> of_kind(WaaEventKind kind) const {
        std::vector<WaaEvent> out;
        for (const auto& e : events) {
            if (e.kind == kind) out.push_back(e);
        }
        return out;
    }
};

Replay replay_text(const std::string& text) {
    Replay r;
    azops::LineSplitter splitter;
    const auto on_line = [&](std::string_view raw) {
        Seen s;
        s.line = azops::sanitize_line(raw);
        r.parser.feed(s.line);
        for (auto& e : r.parser.take_events()) r.events.push_back(std::move(e));
        s.phase = r.parser.phase_name();
        s.done = r.parser.tasks_done();
        s.total = r.parser.total_tasks();
        s.step = r.parser.agent_step();
        s.progress = r.parser.progress_fraction();
        s.error = r.parser.error();
        s.detail = r.parser.detail();
        s.task_id = r.parser.current_task_id();
        s.domain = r.parser.current_domain();
        r.seen.push_back(std::move(s));
    };
    splitter.feed(text, on_line);
    splitter.finish(on_line);
    return r;
}

Replay replay_file(const std::string& name) {
    const std::string text = azops_test::read_file(std::string(AZOPS_TEST_DATA_DIR) + "/waa/" + name);
    REQUIRE_MESSAGE(!text.empty(), "missing test log " << name);
    return replay_text(text);
}

Replay replay_lines(const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& line : lines) text += line + "\n";
    return replay_text(text);
}

void check_progress_never_goes_back(const Replay& r) {
    double previous = 0;
    for (const auto& s : r.seen) {
        INFO("line: " << s.line);
        CHECK(s.progress >= previous);
        CHECK(s.progress <= 1.0);
        previous = s.progress;
    }
}

std::string prefixed(const std::string& time, const std::string& where, const std::string& message,
                     const std::string& level = "INFO") {
    return "[2026-01-28 " + time + " " + level + " " + where + "-MainProcess] " + message;
}

}  // namespace

TEST_CASE("waa log, small run: 13 tasks in 3 domains counted from WAA's own output") {
    const Replay r = replay_file("small_run.log");
    check_progress_never_goes_back(r);

    CHECK(r.at("Waiting for the server to start").phase == "waiting_for_server");
    CHECK(r.at("Failed to get hello").detail.rfind("Waiting for the WAA server in Windows: HTTPConnectionPool", 0) == 0);
    CHECK(r.at("Response from server").phase == "starting_benchmark");
    CHECK(r.at("notepad: 4").total == 4);
    CHECK(r.at("windows_calc: 4").total == 13);
    CHECK(r.at("Worker 0 is doing tasks").total == 13);
    CHECK(r.at("Worker 0 is doing tasks").detail == "Benchmark starting: 13 tasks");
    CHECK(r.at("Worker 0 is doing tasks").progress == 0.0);

    const Seen& first = r.at("[Example ID]: f150e2bc-3a90-4d26-ac22-337ac7852b1c-WOS");
    CHECK(first.phase == "running_task_1");
    CHECK(first.domain == "notepad");
    CHECK(first.task_id == "f150e2bc-3a90-4d26-ac22-337ac7852b1c-WOS");
    CHECK(first.detail == "Task 1 of 13 (notepad)");
    CHECK(r.at("[Instruction]: Open Notepad").detail ==
          "Task 1 of 13 (notepad): Open Notepad and create a file named shopping_list.txt on the Desktop listing "
          "milk, eggs and bread.");
    const Seen& step = r.at("Step 1: computer.os.open_program(\"notepad\")");
    CHECK(step.step == 1);
    CHECK(step.detail == "Task 1 of 13 (notepad): step 1, computer.os.open_program(\"notepad\")");
    CHECK(r.at("Running evaluator(s)...").detail == "Task 1 of 13 (notepad): running evaluator");
    const Seen& result = r.at("Result: 1.00");
    CHECK(result.done == 1);
    CHECK(result.progress == doctest::Approx(1.0 / 13));
    CHECK(result.detail == "Task 1 of 13 (notepad): finished, success (result 1.00)");
    CHECK(r.at("[Example ID]: 0bbe43d7").step == 0);

    // Task 6 raised inside WAA, which logged it and went on: a failed task, not a failed run.
    const Seen& exception = r.at("Exception in settings/5a367e2e-e62f-4396-af40-e58d5c70d9b9-WOS");
    CHECK(exception.done == 6);
    CHECK(exception.phase == "running_task_6");
    for (const auto& s : r.seen) CHECK_FALSE(s.error.has_value());

    const auto started = r.of_kind(WaaEventKind::task_started);
    const auto finished = r.of_kind(WaaEventKind::task_finished);
    REQUIRE(started.size() == 13);
    REQUIRE(finished.size() == 13);
    REQUIRE(r.of_kind(WaaEventKind::benchmark_finished).size() == 1);
    const std::vector<std::string> domains = {"notepad",  "notepad",  "notepad",  "notepad",      "settings",
                                              "settings", "settings", "settings", "settings",     "windows_calc",
                                              "windows_calc", "windows_calc", "windows_calc"};
    for (int k = 0; k < 13; ++k) {
        CHECK(started[k].task_index == k + 1);
        CHECK(started[k].total_tasks == 13);
        CHECK(started[k].domain == domains[k]);
        CHECK(finished[k].task_index == k + 1);
        CHECK(finished[k].task_id == started[k].task_id);
        CHECK_FALSE(finished[k].rerun);
        REQUIRE(finished[k].log_seconds.has_value());
        CHECK(*finished[k].log_seconds > *started[k].log_seconds);
    }
    CHECK(started[0].log_time == "2026-01-28 22:54:57,605");
    CHECK(finished[0].log_time == "2026-01-28 23:01:10,731");
    CHECK(*finished[0].log_seconds - *started[0].log_seconds == doctest::Approx(373.126));
    CHECK(finished[0].result == 1.0);
    CHECK(finished[0].success);
    CHECK(finished[1].result == 0.0);
    CHECK_FALSE(finished[1].success);
    CHECK_FALSE(finished[5].result.has_value());
    CHECK(finished[5].error ==
          std::optional<std::string>("HTTPConnectionPool(host='172.30.0.2', port=5000): Read timed out. (read timeout=30)"));

    const WaaLogParser& p = r.parser;
    CHECK(p.tasks_done() == 13);
    CHECK(p.total_tasks() == 13);
    CHECK(p.successes() == 5);
    CHECK(p.failures() == 8);
    CHECK(p.average_score() == 0.4166666666666667);
    CHECK(p.last_result() == 0.0);
    CHECK(p.current_task_index() == 13);
    CHECK(p.current_instruction() == "Open the Calculator history and clear it.");
    CHECK(p.is_finished());
    CHECK(p.phase_name() == "finished");
    CHECK(p.progress_fraction() == 1.0);
    CHECK_FALSE(p.error().has_value());
    CHECK(p.is_waa_log());
    CHECK(p.detail() == "Finished 13 tasks: 5 succeeded, 8 failed, average score 0.42");
    CHECK(r.of_kind(WaaEventKind::benchmark_finished)[0].average_score == 0.4166666666666667);
}

TEST_CASE("waa log, interrupted: handled task exceptions are failures, the uncaught traceback ends the run") {
    const Replay r = replay_file("interrupted_traceback.log");
    check_progress_never_goes_back(r);
    CHECK(r.at("chrome: 5").total == 5);
    CHECK(r.at("vlc: 3").total == 12);

    // Task 3 printed its result, then failed writing its trajectory: the result stands, counted once.
    const Seen& late_exception = r.at("Exception in chrome/91d6ba53-6321-4edb-94b7-fb493f8996a8-WOS");
    CHECK(late_exception.done == 3);
    const auto finished = r.of_kind(WaaEventKind::task_finished);
    REQUIRE(finished.size() == 4);
    CHECK(finished[2].task_id == "91d6ba53-6321-4edb-94b7-fb493f8996a8-WOS");
    CHECK(finished[2].result == 1.0);
    CHECK(finished[2].success);
    CHECK_FALSE(finished[2].error.has_value());
    CHECK(finished[3].task_id == "95bcf796-ea5e-48e3-a768-94b8166dad59-WOS");
    CHECK_FALSE(finished[3].success);
    CHECK(finished[3].error.value_or("").rfind("HTTPConnectionPool(host='172.30.0.2', port=5000): Max retries", 0) == 0);

    // Logged tracebacks of task exceptions never make the run failed.
    const Seen& frame = r.at("No route to host')", 2);  // the exception line closing the logged traceback
    CHECK_FALSE(frame.error.has_value());
    const Seen& bare = r.at("Traceback (most recent call last):", 3);
    CHECK(bare.error == std::optional<std::string>("Traceback (most recent call last)"));
    CHECK(bare.phase == "failed");

    const WaaLogParser& p = r.parser;
    CHECK(p.error() == std::optional<std::string>(
                           "FileNotFoundError: [Errno 2] No such file or directory: "
                           "'evaluation_examples_windows/examples/chrome/6e520569-7401-41de-bab0-0b35a0b39cd1-WOS.json'"));
    CHECK(p.phase_name() == "failed");
    CHECK(p.detail().rfind("Failed: FileNotFoundError: [Errno 2]", 0) == 0);
    CHECK(p.tasks_done() == 4);
    CHECK(p.total_tasks() == 12);
    CHECK(p.successes() == 2);
    CHECK(p.failures() == 2);
    CHECK_FALSE(p.average_score().has_value());
    CHECK_FALSE(p.is_finished());
    CHECK(p.progress_fraction() == doctest::Approx(4.0 / 12));
    CHECK(r.of_kind(WaaEventKind::task_started).size() == 4);
    CHECK(r.of_kind(WaaEventKind::benchmark_finished).empty());
}

TEST_CASE("waa log, interleaved: other loggers, tqdm bars, a restarted run.py re-running a failed task") {
    const Replay r = replay_file("interleaved_restart.log");
    check_progress_never_goes_back(r);

    CHECK(r.at("Run log: /home/azureuser").phase == "waiting");
    CHECK(r.at("UserWarning: torch.meshgrid").phase == "waiting");
    CHECK(r.at("[WAA] docker exec").phase == "waiting");
    CHECK_FALSE(r.at("return _VF.meshgrid").error.has_value());

    // tqdm's bar and a log record on one line.
    const Seen& glued = r.at("Example:   0%|");
    CHECK(glued.line.find("] Windows Agent Arena: Starting on NORMAL difficulty") != std::string::npos);
    CHECK(glued.phase == "starting_benchmark");
    CHECK(r.at("[Example ID]: 64fcc91d").phase == "running_task_1");

    // Lines that look like results but are not WAA's.
    CHECK(r.at("Task 3/10 complete (PASS)").done == 0);
    CHECK(r.at("Result: the agent reports").done == 0);

    const Seen& transient = r.at("Observation is None");
    CHECK(transient.error == std::optional<std::string>("Observation is None. Waiting a little to do next step."));
    CHECK(transient.phase == "failed");
    CHECK_FALSE(r.at("Exception in msedge/4b18b549").error.has_value());

    const Seen& interrupted = r.at("Interrupted by 15, shutting down");
    CHECK(interrupted.error == std::optional<std::string>("Interrupted by 15, shutting down"));
    CHECK(interrupted.done == 3);
    CHECK_FALSE(r.at("Waiting for the server to start", 2).error.has_value());
    CHECK(r.at("Waiting for the server to start", 2).phase == "waiting_for_server");

    // The second run.py lists msedge 1 + vs_code 3 on top of the 3 done: 7 entries, 6 distinct tasks.
    CHECK(r.at("vs_code: 3", 2).total == 7);
    const Seen& rerun = r.at("[Example ID]: 4b18b549", 2);
    CHECK(rerun.total == 6);
    CHECK(rerun.phase == "running_task_2");

    const auto started = r.of_kind(WaaEventKind::task_started);
    const auto finished = r.of_kind(WaaEventKind::task_finished);
    REQUIRE(started.size() == 8);
    REQUIRE(finished.size() == 7);
    CHECK(started[4].task_id == "4b18b549-3e2f-4034-b8eb-467f09ccf84d-WOS");
    CHECK(started[4].task_index == 2);
    CHECK(started[4].rerun);
    CHECK(started[5].task_id == "46d0653d-d831-4695-8a72-5962b01968b7-WOS");
    CHECK(started[5].task_index == 4);  // interrupted before, never counted: not a re-run
    CHECK_FALSE(started[5].rerun);
    CHECK(finished[3].task_id == "4b18b549-3e2f-4034-b8eb-467f09ccf84d-WOS");
    CHECK(finished[3].rerun);
    CHECK(finished[3].success);

    const WaaLogParser& p = r.parser;
    CHECK(p.tasks_done() == 6);
    CHECK(p.total_tasks() == 6);
    CHECK(p.successes() == 4);
    CHECK(p.failures() == 2);
    CHECK(p.average_score() == 0.75);
    CHECK(p.phase_name() == "finished");
    CHECK(p.progress_fraction() == 1.0);
    CHECK_FALSE(p.error().has_value());
}

TEST_CASE("waa log: the unprefixed forms count like the prefixed ones") {
    const Replay r = replay_lines({"Left tasks:", "chrome: 1", "notepad: 1", "", "[Domain]: chrome",
                                   "[Example ID]: 2ae9ba84-3a0d-4d4c-8338-3a1478dc5eaf-wos", "Step 1: computer.mouse.single_click()",
                                   "Result: 1.00", "Finished chrome/2ae9ba84-3a0d-4d4c-8338-3a1478dc5eaf-wos",
                                   "[Domain]: notepad", "[Example ID]: 9f1c2d3e-4b5a-6c7d-8e9f-0a1b2c3d4e5f-WOS",
                                   "Step 1: computer.os.open_program(\"notepad\")", "Step 2: DONE", "Result: 0.00",
                                   "Finished notepad/9f1c2d3e-4b5a-6c7d-8e9f-0a1b2c3d4e5f-WOS", "Average score: 0.5"});
    const WaaLogParser& p = r.parser;
    CHECK(p.total_tasks() == 2);
    CHECK(p.tasks_done() == 2);
    CHECK(p.successes() == 1);
    CHECK(p.failures() == 1);
    CHECK(p.average_score() == 0.5);
    CHECK(p.current_domain() == "notepad");
    CHECK(p.agent_step() == 2);
    CHECK(r.at("Step 2: DONE").detail == "Task 2 of 2 (notepad): step 2, DONE");
    CHECK(r.events.size() == 5);
    CHECK(r.events[0].log_time.empty());
    CHECK_FALSE(r.events[0].log_seconds.has_value());
}

TEST_CASE("waa log: a Finished without a Result is a failure with no result") {
    const Replay r = replay_lines({"Left tasks:", "vlc: 1", "", "[Domain]: vlc", "[Example ID]: a-WOS", "Finished vlc/a-WOS"});
    CHECK(r.parser.tasks_done() == 1);
    CHECK(r.parser.failures() == 1);
    const auto finished = r.of_kind(WaaEventKind::task_finished);
    REQUIRE(finished.size() == 1);
    CHECK_FALSE(finished[0].result.has_value());
    CHECK(r.parser.progress_fraction() == 1.0);
    CHECK(r.parser.phase_name() == "running_task_1");  // only "Average score:" ends the benchmark
}

TEST_CASE("waa log: a Result whose task began before the log did is counted once, with its Finished") {
    const Replay r = replay_lines({"Step 7: computer.keyboard.press(\"enter\")", "Result: 1.00", "Finished clock/b-WOS",
                                   "[Domain]: clock", "[Example ID]: c-WOS", "Result: 0.00"});
    const WaaLogParser& p = r.parser;
    CHECK(p.tasks_done() == 2);
    CHECK(p.successes() == 1);
    CHECK(p.failures() == 1);
    const auto finished = r.of_kind(WaaEventKind::task_finished);
    REQUIRE(finished.size() == 2);
    CHECK(finished[0].task_id.empty());
    CHECK(finished[0].task_index == 1);
    CHECK(finished[0].success);
    CHECK(r.at("Result: 1.00").phase == "running_tasks");
    CHECK(r.at("[Example ID]: c-WOS").phase == "running_task_2");
}

TEST_CASE("waa log: a log begun mid-run learns N from a restarted run.py's block, tasks done included") {
    const Replay r = replay_lines({"Result: 1.00", "Finished clock/b-WOS", "Waiting for the server to start...",
                                   "Left tasks:", "clock: 3", "", "[Example ID]: h-WOS"});
    CHECK(r.at("clock: 3").total == 4);
    CHECK(r.at("clock: 3").progress == 0.0);  // not yet: the block may go on
    CHECK(r.at("[Example ID]: h-WOS").progress == doctest::Approx(0.25));
    CHECK(r.parser.phase_name() == "running_task_2");
}

TEST_CASE("waa log: the worker's own list sets N when it is whole, a cut list is ignored") {
    SUBCASE("whole") {
        const Replay r = replay_lines({"Left tasks:", "chrome: 17", "vlc: 3", "",
                                       "Worker 1 is doing tasks: [('chrome', 'a-WOS'), ('vlc', 'b-WOS')]"});
        CHECK(r.parser.total_tasks() == 2);
    }
    SUBCASE("cut by the line limit") {
        std::string list = "Worker 0 is doing tasks: [";
        for (int k = 0; k < 150; ++k) list += "('chrome', '2ae9ba84-3a0d-4d4c-8338-3a1478dc5eaf-WOS'), ";
        list += "('vlc', 'b-WOS')]";
        const Replay r = replay_lines({"Left tasks:", "chrome: 150", "vlc: 1", "", list});
        CHECK(r.seen.back().line.find("[cut ") != std::string::npos);
        CHECK(r.parser.total_tasks() == 151);
    }
    SUBCASE("an empty list") {
        const Replay r = replay_lines({"Left tasks:", "", "Worker 0 is doing tasks: []", "No examples finished."});
        CHECK(r.parser.total_tasks() == 0);
        CHECK(r.parser.phase_name() == "finished");
        CHECK(r.parser.progress_fraction() == 1.0);
        REQUIRE(r.events.size() == 1);
        CHECK(r.events[0].kind == WaaEventKind::benchmark_finished);
        CHECK_FALSE(r.events[0].average_score.has_value());
    }
}

TEST_CASE("waa log: a log record glued after a tqdm bar still counts") {
    WaaLogParser p;
    p.feed("Example:  33%|\xE2\x96\x88\xE2\x96\x88\xE2\x96\x88\xE2\x96\x8E      | 1/3 [06:41<13:22, 401.33s/it]" +
           prefixed("23:01:11,451", "run/263", "[Example ID]: 0bbe43d7-1dd8-4ee2-b5a8-2d7e0c8f5f11-WOS"));
    CHECK(p.current_task_id() == "0bbe43d7-1dd8-4ee2-b5a8-2d7e0c8f5f11-WOS");
    const auto events = p.take_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].log_time == "2026-01-28 23:01:11,451");
}

TEST_CASE("waa log: a task exception with a multi-line message and its logged traceback fail only the task") {
    const Replay r = replay_lines(
        {prefixed("22:55:15,221", "run/263", "[Example ID]: g-WOS"),
         prefixed("22:58:02,114", "run/304", "Exception in msedge/g-WOS: Timeout 30000ms exceeded.", "ERROR"),
         "Call log:", "  - waiting for locator(\"#settings\")",
         prefixed("22:58:02,115", "run/306", "Traceback (most recent call last):", "ERROR"),
         "  File \"/client/run.py\", line 280, in test", "    x()",
         "playwright._impl._errors.TimeoutError: Timeout 30000ms exceeded.", ""});
    CHECK_FALSE(r.parser.error().has_value());
    CHECK(r.parser.failures() == 1);
    const auto finished = r.of_kind(WaaEventKind::task_finished);
    REQUIRE(finished.size() == 1);
    CHECK(finished[0].error == std::optional<std::string>("Timeout 30000ms exceeded."));
}

TEST_CASE("waa log: a chained uncaught traceback reports its last exception") {
    const Replay r = replay_lines({"Traceback (most recent call last):", "  File \"/client/run.py\", line 12, in <module>",
                                   "    main()", "ConnectionResetError: [Errno 104] Connection reset by peer", "",
                                   "During handling of the above exception, another exception occurred:", "",
                                   "Traceback (most recent call last):", "  File \"/client/run.py\", line 14, in <module>",
                                   "    retry()", "RuntimeError: the Windows VM stopped answering"});
    CHECK(r.at("ConnectionResetError").error ==
          std::optional<std::string>("ConnectionResetError: [Errno 104] Connection reset by peer"));
    CHECK(r.parser.error() == std::optional<std::string>("RuntimeError: the Windows VM stopped answering"));
    CHECK(r.parser.phase_name() == "failed");
}

TEST_CASE("waa log: an ERROR line is the error until the benchmark moves on") {
    WaaLogParser p;
    p.feed(prefixed("22:55:15,221", "run/262", "[Domain]: notepad"));
    p.feed(prefixed("22:55:15,221", "run/263", "[Example ID]: d-WOS"));
    CHECK(p.feed(prefixed("22:56:01,003", "python/91", "Failed to get screenshot, status 500", "ERROR")));
    CHECK(p.error() == std::optional<std::string>("Failed to get screenshot, status 500"));
    CHECK(p.phase_name() == "failed");
    CHECK(p.feed(prefixed("22:56:30,412", "lib_run_single/56", "Step 1: computer.mouse.single_click()")));
    CHECK_FALSE(p.error().has_value());
    CHECK(p.phase_name() == "running_task_1");
    p.feed(prefixed("22:57:00,000", "threading/1016", "Exception in thread Thread-3 (recorder):", "ERROR"));
    CHECK(p.error() == std::optional<std::string>("Exception in thread Thread-3 (recorder):"));
    CHECK(p.tasks_done() == 0);
    p.feed("ERROR: cannot connect to the Docker daemon");
    CHECK(p.error() == std::optional<std::string>("ERROR: cannot connect to the Docker daemon"));
}

TEST_CASE("waa log: timestamps become seconds since 1970 read as UTC") {
    WaaLogParser p;
    p.feed(prefixed("22:55:15,221", "run/263", "[Example ID]: e-WOS"));
    const auto events = p.take_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].log_time == "2026-01-28 22:55:15,221");
    CHECK(events[0].log_seconds == doctest::Approx(1769640915.221));
    CHECK(p.take_events().empty());
}

TEST_CASE("waa log: lines that only resemble WAA's change nothing") {
    WaaLogParser p;
    for (const char* line : {"Step 1/30 : FROM dockurr/windows:latest", "Result: abc", "Average score: nan",
                             "Finished building", "Task 1/154", "[2026-02-19 10:04:11] [WAA] started", "chrome: 17",
                             "[2026-01-28 99:55:15,221 INFO run/262-MainProcess] [Domain]: chrome", "Exception in thread"}) {
        INFO(line);
        CHECK_FALSE(p.feed(line));
    }
    CHECK_FALSE(p.is_waa_log());
    CHECK(p.phase_name() == "waiting");
    CHECK(p.total_tasks() == 0);
    CHECK(p.agent_step() == 0);
    CHECK(p.current_domain().empty());
}

TEST_CASE("waa log: the same [Example ID] line twice starts the task once") {
    const Replay r = replay_lines({"[Example ID]: f-WOS", "Step 3: computer.mouse.single_click()", "[Example ID]: f-WOS"});
    CHECK(r.of_kind(WaaEventKind::task_started).size() == 1);
    CHECK(r.parser.agent_step() == 3);
}

TEST_CASE("waa log: events not taken are bounded, the oldest dropped") {
    WaaLogParser p;
    const int extra = 5;
    for (int k = 1; k <= static_cast<int>(WaaLogParser::max_pending_events) + extra; ++k) {
        p.feed("[Example ID]: t" + std::to_string(k) + "-WOS");
    }
    const auto events = p.take_events();
    REQUIRE(events.size() == WaaLogParser::max_pending_events);
    CHECK(events.front().task_index == extra + 1);
    CHECK(events.back().task_id == "t" + std::to_string(WaaLogParser::max_pending_events + extra) + "-WOS");
}

TEST_CASE("waa log: event kind names") {
    CHECK(azops::waa_event_kind_name(WaaEventKind::task_started) == "task_started");
    CHECK(azops::waa_event_kind_name(WaaEventKind::task_finished) == "task_finished");
    CHECK(azops::waa_event_kind_name(WaaEventKind::benchmark_finished) == "benchmark_finished");
}
