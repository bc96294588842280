#include <azops/tracker.hpp>

#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <atomic>
#include <thread>
#include <vector>

#include <sys/stat.h>

using azops_test::ManualClock;
using azops_test::read_file;
using azops_test::ScratchDir;

namespace {

azops::TrackerOptions options_for(const ScratchDir& dir, ManualClock& clock) {
    azops::TrackerOptions options;
    options.status_file = dir / "azure_ops_status.json";
    options.clock = clock.function();
    return options;
}

azops::OpsStatus read_status(const std::filesystem::path& path) {
    const auto parsed = azops::parse_status(read_file(path));
    REQUIRE_MESSAGE(parsed.status.has_value(), parsed.error);
    return *parsed.status;
}

}  // namespace

TEST_CASE("Tracker: a task's life is written to the status file") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("setup-waa");
    tracker.set_vm({std::string("waa-vm"), std::string("Standard_D8ds_v5"), std::string("eastus"),
                    std::string("20.1.2.3"), std::string("running"), std::nullopt});
    tracker.operation("docker_build", 21);
    tracker.step(3, 21, "COPY --from=windowsarena/winarena:latest /entry.sh /entry.sh");
    tracker.phase("copying_files");
    tracker.log("#8 DONE 0.2s");
    clock.advance(std::chrono::seconds(90));
    tracker.flush();

    auto s = read_status(dir / "azure_ops_status.json");
    CHECK(s.task == "setup-waa");
    CHECK(s.state == "running");
    CHECK(s.operation == "docker_build");
    CHECK(s.phase == "copying_files");
    CHECK(s.step == 3);
    CHECK(s.total_steps == 21);
    CHECK(s.detail == "COPY --from=windowsarena/winarena:latest /entry.sh /entry.sh");
    CHECK(s.progress_pct == doctest::Approx(100.0 * 2 / 21));
    CHECK(s.log_tail == std::vector<std::string>{"#8 DONE 0.2s"});
    CHECK(s.elapsed_seconds == doctest::Approx(90.0));
    CHECK(s.started_at == "2026-11-30T00:53:20Z");
    CHECK(s.updated_at == "2026-11-30T00:54:50Z");
    CHECK(s.vm_size == std::optional<std::string>("Standard_D8ds_v5"));
    CHECK(s.vm_ip == std::optional<std::string>("20.1.2.3"));
    CHECK(s.status_file == (dir / "azure_ops_status.json").string());
    CHECK(s.schema == "azops.status/1");

    tracker.succeed();
    s = read_status(dir / "azure_ops_status.json");
    CHECK(s.state == "succeeded");
    CHECK(s.progress_pct == 100.0);
    REQUIRE(s.timeline.size() == 1);
    CHECK(s.timeline[0].state == "succeeded");
    CHECK(s.timeline[0].duration_seconds == doctest::Approx(90.0));
    CHECK_FALSE(s.error.has_value());
}

TEST_CASE("Tracker: operations form a timeline with durations") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("setup-waa");
    tracker.operation("vm_create");
    clock.advance(std::chrono::seconds(120));
    tracker.operation("docker_install");
    clock.advance(std::chrono::seconds(60));
    tracker.fail("apt-get: could not resolve host");
    const auto s = read_status(dir / "azure_ops_status.json");
    REQUIRE(s.timeline.size() == 2);
    CHECK(s.timeline[0].name == "vm_create");
    CHECK(s.timeline[0].state == "succeeded");
    CHECK(s.timeline[0].duration_seconds == doctest::Approx(120.0));
    CHECK(s.timeline[1].name == "docker_install");
    CHECK(s.timeline[1].state == "failed");
    CHECK(s.timeline[1].duration_seconds == doctest::Approx(60.0));
    CHECK(s.state == "failed");
    CHECK(s.error == std::optional<std::string>("apt-get: could not resolve host"));
}

TEST_CASE("Tracker: progress is clamped and never goes backwards") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("t");
    tracker.progress(40.0);
    tracker.progress(30.0);
    CHECK(tracker.snapshot().progress_pct == 40.0);
    tracker.progress(250.0);
    CHECK(tracker.snapshot().progress_pct == 100.0);
    tracker.progress(-3.0);
    CHECK(tracker.snapshot().progress_pct == 100.0);
}

TEST_CASE("Tracker: the log tail keeps the last 50 sanitised lines") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("t");
    for (int i = 0; i < 120; ++i) tracker.log("\x1b[32mline " + std::to_string(i) + "\x1b[0m");
    tracker.log("bad \xff byte");
    const auto s = tracker.snapshot();
    REQUIRE(s.log_tail.size() == 50);
    CHECK(s.log_tail.front() == "line 71");
    CHECK(s.log_tail.back() == "bad \xEF\xBF\xBD byte");
}

TEST_CASE("Tracker: a million log calls from four threads make few writes and keep the last line") {
    ScratchDir dir;
    azops::TrackerOptions options;
    options.status_file = dir / "s.json";
    azops::StatusWriterStats stats;
    const auto start = std::chrono::steady_clock::now();
    {
        azops::Tracker tracker(options);
        tracker.begin("flood");
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t) {
            threads.emplace_back([&tracker, t] {
                for (int i = 0; i < 250000; ++i) tracker.log("worker " + std::to_string(t) + " line " + std::to_string(i));
            });
        }
        for (auto& th : threads) th.join();
        tracker.log("the very last line");
        tracker.succeed();
        stats = tracker.writer_stats();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(static_cast<double>(stats.writes) <= 10.0 * seconds + 5.0);
    const auto s = read_status(dir / "s.json");
    CHECK(s.log_tail.back() == "the very last line");
    CHECK(s.state == "succeeded");
}

TEST_CASE("Tracker: destroyed while running, the final status says the task did not finish") {
    ScratchDir dir;
    ManualClock clock;
    {
        azops::Tracker tracker(options_for(dir, clock));
        tracker.begin("t");
        tracker.operation("benchmark");
    }
    const auto s = read_status(dir / "azure_ops_status.json");
    CHECK(s.state == "failed");
    CHECK(s.error == std::optional<std::string>("the program ended before the task finished"));
}

TEST_CASE("Tracker: the run token is written beside the status file, readable only by its owner") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("t");
    CHECK(tracker.token().size() == 48);
    const auto token_file = tracker.token_file();
    CHECK(read_file(token_file) == tracker.token() + "\n");
    struct stat st {};
    REQUIRE(::stat(token_file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    azops::Tracker other(options_for(dir, clock));
    CHECK(other.token() != tracker.token());
}

TEST_CASE("Tracker: a stop request needs a handler and a running task") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("t");
    CHECK_FALSE(tracker.cancellable());
    CHECK_FALSE(tracker.request_cancel());
    std::atomic<int> calls{0};
    tracker.on_cancel([&] { ++calls; });
    CHECK(tracker.cancellable());
    CHECK(tracker.request_cancel());
    CHECK(calls == 1);
    tracker.cancel();
    CHECK_FALSE(tracker.cancellable());
    CHECK_FALSE(tracker.request_cancel());
    CHECK(tracker.snapshot().state == "cancelled");
}

TEST_CASE("Tracker: a .cancel file with the run's token stops the task, a wrong token is ignored") {
    ScratchDir dir;
    ManualClock clock;
    auto options = options_for(dir, clock);
    options.stop_request_poll = std::chrono::milliseconds(10);
    azops::Tracker tracker(options);
    std::mutex m;
    std::condition_variable cv;
    int calls = 0;
    tracker.on_cancel([&] {
        std::lock_guard<std::mutex> lock(m);
        ++calls;
        cv.notify_all();
    });
    tracker.begin("t");

    azops_test::write_file(tracker.cancel_request_file(), "not-the-token\n");
    std::uint64_t seen = tracker.published().version;
    while (tracker.snapshot().notice != std::optional<std::string>(
                                            "ignored a stop request that did not carry this run's token")) {
        REQUIRE(tracker.wait_for_publish(seen, std::chrono::seconds(10)));
        seen = tracker.published().version;
    }
    CHECK(calls == 0);
    CHECK_FALSE(std::filesystem::exists(tracker.cancel_request_file()));

    azops_test::write_file(tracker.cancel_request_file(), tracker.token() + "\n");
    std::unique_lock<std::mutex> lock(m);
    CHECK(cv.wait_for(lock, std::chrono::seconds(10), [&] { return calls == 1; }));
}

TEST_CASE("Tracker: published() carries the status JSON and wakes waiters on change") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("t");
    tracker.flush();
    const auto first = tracker.published();
    CHECK(first.version >= 1);
    CHECK(azops::parse_status(first.json).status.has_value());
    std::thread later([&] { tracker.log("news"); });
    CHECK(tracker.wait_for_publish(first.version, std::chrono::seconds(10)));
    later.join();
    CHECK(tracker.published().json.find("news") != std::string::npos);
    CHECK_FALSE(tracker.wait_for_publish(tracker.published().version, std::chrono::milliseconds(1)));
}

TEST_CASE("Tracker: a status folder that cannot be created is an error at construction") {
    azops::TrackerOptions options;
    options.status_file = "/proc/azops-cannot-exist/s.json";
    CHECK_THROWS_AS(azops::Tracker{options}, std::filesystem::filesystem_error);
}

TEST_CASE("Tracker: write problems become the status's notice") {
    ScratchDir dir;
    ManualClock clock;
    auto options = options_for(dir, clock);
    std::filesystem::create_directory(options.status_file);  // a folder where the file should be
    azops::Tracker tracker(options);
    tracker.begin("t");
    tracker.flush();
    const auto notice = tracker.snapshot().notice;
    REQUIRE(notice.has_value());
    CHECK(notice->find("cannot rename over") != std::string::npos);
}
