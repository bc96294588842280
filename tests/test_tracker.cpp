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
    // Published from construction on, before the writer's thread has run: a server has something to serve.
    const auto idle = azops::parse_status(tracker.published().json);
    REQUIRE(idle.status.has_value());
    CHECK(idle.status->state == "idle");
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

// ---- What the tracker reads from output, and its estimates ----

namespace {

void log_file(azops::Tracker& tracker, const std::string& relative, ManualClock* clock = nullptr) {
    azops::LineSplitter splitter;
    const std::string text = read_file(std::string(AZOPS_TEST_DATA_DIR) + "/" + relative);
    REQUIRE_FALSE(text.empty());
    splitter.feed(text, [&](std::string_view line, std::size_t cut) {
        if (clock != nullptr) clock->advance(std::chrono::milliseconds(500));
        tracker.log(line, cut);
    });
    splitter.finish([&](std::string_view line, std::size_t cut) { tracker.log(line, cut); });
}

// The same log handed to the tracker in chunks of `chunk_bytes`, as a pipe's reads return it.
void log_file_in_chunks(azops::Tracker& tracker, const std::string& relative, std::size_t chunk_bytes) {
    azops::LineSplitter splitter;
    const std::string text = read_file(std::string(AZOPS_TEST_DATA_DIR) + "/" + relative);
    REQUIRE_FALSE(text.empty());
    for (std::size_t at = 0; at < text.size(); at += chunk_bytes) {
        tracker.log_chunk(std::string_view(text).substr(at, chunk_bytes), splitter);
    }
    splitter.finish([&](std::string_view line, std::size_t cut) { tracker.log(line, cut); });
}

azops::VmInfo vm_state(const char* state) {
    azops::VmInfo vm;
    vm.state = state;
    return vm;
}

// A running VM of `size`, in `region` when one is given (else the default region).
azops::VmInfo running_vm(const char* size, const char* region = nullptr) {
    azops::VmInfo vm = vm_state("running");
    vm.size = size;
    if (region != nullptr) vm.region = region;
    return vm;
}

}  // namespace

TEST_CASE("Tracker: a command's output that is a docker build becomes the docker_build operation") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("build");
    tracker.operation("command");
    log_file(tracker, "docker/buildkit_waa.log", &clock);
    const auto s = tracker.snapshot();
    CHECK(s.operation == "docker_build");
    CHECK(s.timeline.back().name == "docker_build");
    CHECK(s.step == 21);
    CHECK(s.total_steps == 21);
    CHECK(s.phase == "build_succeeded");
    tracker.succeed();
    CHECK(tracker.snapshot().state == "succeeded");
}

TEST_CASE("Tracker: a log handed over in chunks reads the same as line by line") {
    for (const char* log : {"docker/buildkit_waa.log", "docker/buildkit_failed.log"}) {
        for (const std::size_t chunk_bytes : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, std::size_t{1} << 20}) {
            INFO(std::string(log) << " in chunks of " << chunk_bytes << " bytes");
            ScratchDir dir_lines, dir_chunks;
            ManualClock clock;
            azops::Tracker by_line(options_for(dir_lines, clock));
            azops::Tracker by_chunk(options_for(dir_chunks, clock));
            for (azops::Tracker* t : {&by_line, &by_chunk}) {
                t->begin("build");
                t->operation("command");
            }
            log_file(by_line, log);
            log_file_in_chunks(by_chunk, log, chunk_bytes);
            const auto a = by_line.snapshot();
            const auto b = by_chunk.snapshot();
            CHECK(b.operation == a.operation);
            CHECK(b.step == a.step);
            CHECK(b.total_steps == a.total_steps);
            CHECK(b.phase == a.phase);
            CHECK(b.detail == a.detail);
            CHECK(b.progress_pct == a.progress_pct);
            CHECK(b.log_tail == a.log_tail);
            CHECK(b.log_tail.size() > 40);
        }
    }
}

TEST_CASE("Tracker: a chunk's complete lines are logged at once, a line split across chunks when it is whole") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("build");
    azops::LineSplitter splitter(32);
    tracker.log_chunk("#1 DONE 0.0s\n\x1b[32mSuccess", splitter);
    CHECK(tracker.snapshot().log_tail == std::vector<std::string>{"#1 DONE 0.0s"});
    tracker.log_chunk("fully\x1b[0m\r\n0123456789abcdef0123456789abcdefXYZ\nno newline", splitter);
    CHECK(tracker.snapshot().log_tail == std::vector<std::string>{"#1 DONE 0.0s", "Successfully",
                                                                  "0123456789abcdef0123456789abcdef \xE2\x80\xA6[cut 3 bytes]"});
    splitter.finish([&](std::string_view line, std::size_t cut) { tracker.log(line, cut); });
    CHECK(tracker.snapshot().log_tail.back() == "no newline");
}

TEST_CASE("Tracker: a download bar redrawn with carriage returns shows, and moves the boot, before its line ends") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("setup-waa");
    tracker.operation("windows_boot", 8);
    azops::LineSplitter splitter;
    tracker.log_chunk("\xE2\x9D\xAF Downloading Windows 11 Enterprise...\n", splitter);
    double last_pct = -1.0;
    for (int pct = 10; pct <= 90; pct += 10) {
        clock.advance(std::chrono::seconds(5));
        const std::string drawing = "win11x64.iso         " + std::to_string(pct) + "%[=====>     ]   3.21G   118MB/s    eta 1m 27s";
        tracker.log_chunk("\r" + drawing, splitter);
        const auto s = tracker.snapshot();
        CHECK(s.log_partial);
        REQUIRE(s.log_tail.size() == 2);  // one line, redrawn in place
        CHECK(s.log_tail.back() == drawing);
        CHECK(s.detail.find(std::to_string(pct) + "%") != std::string::npos);
        CHECK(s.progress_pct > last_pct);
        last_pct = s.progress_pct;
    }
    tracker.flush();
    const auto written = read_status(dir / "azure_ops_status.json");
    CHECK(written.log_partial);
    REQUIRE_FALSE(written.log_tail.empty());
    CHECK(written.log_tail.back().find("90%") != std::string::npos);

    tracker.log_chunk("\rwin11x64.iso        100%[===================>]   6.00G   112MB/s    in 58s\nnext line\n", splitter);
    const auto s = tracker.snapshot();
    CHECK_FALSE(s.log_partial);
    CHECK(s.log_tail == std::vector<std::string>{"\xE2\x9D\xAF Downloading Windows 11 Enterprise...",
                                                 "win11x64.iso        100%[===================>]   6.00G   112MB/s    in 58s", "next line"});
}

TEST_CASE("Tracker: log_redraw is replaced by the next drawing and by the line that ends it") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("build");
    tracker.log("before");
    tracker.log_redraw("\rCollecting torch 10%");
    tracker.log_redraw("Collecting torch 20%");
    tracker.log_redraw("");  // a blank drawing changes nothing
    auto s = tracker.snapshot();
    CHECK(s.log_tail == std::vector<std::string>{"before", "Collecting torch 20%"});
    CHECK(s.log_partial);
    tracker.log("Collecting torch done");
    s = tracker.snapshot();
    CHECK(s.log_tail == std::vector<std::string>{"before", "Collecting torch done"});
    CHECK_FALSE(s.log_partial);
    tracker.log("after");
    CHECK(tracker.snapshot().log_tail == std::vector<std::string>{"before", "Collecting torch done", "after"});
}

TEST_CASE("Tracker: the default clock is the wall clock, to within a tick") {
    const auto before = std::chrono::system_clock::now();
    const auto coarse = azops::detail::coarse_now();
    const auto after = std::chrono::system_clock::now();
    CHECK(coarse <= after);
    CHECK(coarse >= before - std::chrono::milliseconds(50));
}

TEST_CASE("Tracker: a failed docker build fails the task with the builder's own error, even after succeed()") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("build");
    tracker.operation("docker_build");
    log_file(tracker, "docker/buildkit_failed.log", &clock);
    auto s = tracker.snapshot();
    CHECK(s.step == 4);
    CHECK(s.total_steps == 12);
    CHECK(s.detail == R"x(RUN python3 -c "import json; print(json.dumps({'ok': True}))")x");
    CHECK(s.phase == "build_failed");
    tracker.succeed();  // the piped command exited 0
    s = read_status(dir / "azure_ops_status.json");
    CHECK(s.state == "failed");
    CHECK(s.error == std::optional<std::string>(
                         R"x(failed to solve: process "/bin/sh -c python3 -c \"import json; print(json.dumps({'ok': True}))\"" did not complete successfully: exit code: 127)x"));
}

TEST_CASE("Tracker: the Windows boot log drives the windows_boot operation's phases") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("setup-waa");
    tracker.operation("windows_boot");
    log_file(tracker, "boot/first_boot.log", &clock);
    const auto s = tracker.snapshot();
    CHECK(s.phase == "windows_started");
    CHECK(s.step == 7);
    CHECK(s.total_steps == 7);
    CHECK(s.progress_pct == 100.0);
}

TEST_CASE("Tracker: a boot announced with a step after its log keeps that step's share of the progress") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("setup-waa");
    tracker.operation("windows_boot", 8);  // the log's 7 steps, then the wait for the WAA server
    log_file(tracker, "boot/first_boot.log", &clock);
    auto s = tracker.snapshot();
    CHECK(s.phase == "windows_started");
    CHECK(s.step == 7);
    CHECK(s.total_steps == 8);
    CHECK(s.progress_pct == doctest::Approx(100.0 * 7 / 8));
    tracker.step(8, 8, "Waiting for the WAA server");
    clock.advance(std::chrono::minutes(10));
    s = tracker.snapshot();
    CHECK(s.step == 8);
    CHECK(s.progress_pct == doctest::Approx(100.0 * 7 / 8));
    tracker.succeed();
    CHECK(tracker.snapshot().progress_pct == 100.0);
}

TEST_CASE("Tracker: WAA output moves the benchmark: task K of N, ETA from the tasks so far") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.begin("run-waa");
    tracker.operation("benchmark");
    log_file(tracker, "waa/small_run.log", &clock);
    const auto s = tracker.snapshot();
    CHECK(s.total_steps == 13);
    CHECK(s.step == 13);
    CHECK(s.phase == "finished");
    CHECK(s.progress_pct == 100.0);
}

TEST_CASE("Tracker: billing follows the VM state, to the cent") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.set_vm(running_vm("Standard_D8ds_v5", "eastus"));
    tracker.begin("setup-waa");
    clock.advance(std::chrono::hours(1));        // running: 0.452
    tracker.set_vm(vm_state("stopped"));         // stopped from inside: still billed
    clock.advance(std::chrono::minutes(30));     // 0.226
    tracker.set_vm(vm_state("deallocated"));     // not billed
    clock.advance(std::chrono::hours(5));
    tracker.set_vm(vm_state("running"));
    clock.advance(std::chrono::minutes(15));     // 0.113
    auto s = tracker.snapshot();
    CHECK(s.rate_known);
    REQUIRE(s.hourly_rate_usd.has_value());
    CHECK(*s.hourly_rate_usd == doctest::Approx(0.452));
    REQUIRE(s.cost_usd.has_value());
    CHECK(*s.cost_usd == doctest::Approx(0.791).epsilon(0.0001));
    CHECK_FALSE(s.billing_assumed);
    CHECK(s.rate_source.find("built-in table") != std::string::npos);
}

TEST_CASE("Tracker: an unknown VM state bills the whole task and says it assumed so") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    azops::VmInfo vm;
    vm.size = "Standard_D4ds_v5";
    tracker.set_vm(vm);
    tracker.begin("t");
    clock.advance(std::chrono::hours(2));
    const auto s = tracker.snapshot();
    CHECK(s.billing_assumed);
    REQUIRE(s.cost_usd.has_value());
    CHECK(*s.cost_usd == doctest::Approx(0.452));
}

TEST_CASE("Tracker: a VM still allocated after the task ended goes on costing until it is deallocated") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.set_vm(running_vm("Standard_D8ds_v5", "eastus"));
    tracker.begin("setup-waa");
    clock.advance(std::chrono::hours(1));
    tracker.succeed();
    const double elapsed_at_end = tracker.snapshot().elapsed_seconds;
    clock.advance(std::chrono::minutes(30));  // the idle countdown runs: the VM is billed
    auto s = tracker.snapshot();
    CHECK(s.elapsed_seconds == elapsed_at_end);
    REQUIRE(s.cost_usd.has_value());
    CHECK(*s.cost_usd == doctest::Approx(0.678));
    tracker.set_vm(vm_state("deallocating"));
    clock.advance(std::chrono::hours(3));
    s = tracker.snapshot();
    CHECK(*s.cost_usd == doctest::Approx(0.678));
    CHECK(s.vm_state == "deallocating");
    tracker.flush();
    CHECK(*read_status(dir / "azure_ops_status.json").cost_usd == doctest::Approx(0.678));
}

TEST_CASE("Tracker: after the end, a VM whose state is not known is not billed on") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    azops::VmInfo vm;
    vm.size = "Standard_D4ds_v5";
    tracker.set_vm(vm);
    tracker.begin("t");
    clock.advance(std::chrono::hours(1));
    tracker.fail("boom");
    clock.advance(std::chrono::hours(1));
    const auto s = tracker.snapshot();
    REQUIRE(s.cost_usd.has_value());
    CHECK(*s.cost_usd == doctest::Approx(0.226));
}

TEST_CASE("Tracker: an unknown size is 'rate unknown', never $0.00") {
    ScratchDir dir;
    ManualClock clock;
    azops::Tracker tracker(options_for(dir, clock));
    tracker.set_vm(running_vm("Standard_Z99_vNext"));
    tracker.begin("t");
    clock.advance(std::chrono::hours(1));
    const auto s = tracker.snapshot();
    CHECK_FALSE(s.rate_known);
    CHECK_FALSE(s.cost_usd.has_value());
    CHECK_FALSE(s.hourly_rate_usd.has_value());
    CHECK(s.rate_source.find("no hourly rate for Standard_Z99_vNext") != std::string::npos);
    const nlohmann::json j = s;
    CHECK(j.at("cost_usd").is_null());
}

TEST_CASE("Tracker: the original specification's rates by configuration") {
    ScratchDir dir;
    ManualClock clock;
    auto options = options_for(dir, clock);
    options.cost.rate_file = std::string(AZOPS_TEST_DATA_DIR) + "/prices/original_spec_rates.json";
    azops::Tracker tracker(options);
    tracker.set_vm(running_vm("Standard_D8ds_v5"));
    tracker.begin("t");
    clock.advance(std::chrono::minutes(30));
    const auto s = tracker.snapshot();
    CHECK(*s.hourly_rate_usd == doctest::Approx(0.844));
    CHECK(*s.cost_usd == doctest::Approx(0.422));
}

TEST_CASE("Tracker: a bad rate file is a notice, and the built-in table still prices the VM") {
    ScratchDir dir;
    ManualClock clock;
    auto options = options_for(dir, clock);
    options.cost.rate_file = std::string(AZOPS_TEST_DATA_DIR) + "/prices/override_truncated.json";
    azops::Tracker tracker(options);
    azops::VmInfo vm;
    vm.size = "Standard_D4ds_v5";
    tracker.set_vm(vm);
    const auto s = tracker.snapshot();
    REQUIRE(s.notice.has_value());
    CHECK(s.notice->rfind("prices not loaded: ", 0) == 0);
    CHECK(*s.hourly_rate_usd == doctest::Approx(0.226));
}

TEST_CASE("Tracker: finished operations are recorded in history, and the next run's ETA uses them") {
    ScratchDir dir;
    const auto history = dir / "azure_ops_history.json";
    const std::vector<std::string> plan = {"vm_create", "docker_install", "docker_build"};
    const auto run_once = [&](ManualClock& clock, bool check_eta) {
        auto options = options_for(dir, clock);
        options.history_file = history;
        options.planned_operations = plan;
        azops::Tracker tracker(options);
        tracker.begin("setup-waa");
        tracker.operation("vm_create");
        clock.advance(std::chrono::seconds(100));
        if (check_eta) {
            const auto s = tracker.snapshot();
            REQUIRE(s.eta_seconds.has_value());
            // 20 s of vm_create's 120 s are left; docker_install (60 s) and the build (21 × 10 s) remain.
            CHECK(*s.eta_seconds == doctest::Approx(20.0 + 60.0 + 210.0));
            CHECK(s.eta_source == "history");
            CHECK(s.progress_pct == doctest::Approx(0.0));
        }
        clock.advance(std::chrono::seconds(20));
        tracker.operation("docker_install");
        if (check_eta) CHECK(tracker.snapshot().progress_pct == doctest::Approx(100.0 * 120 / 390).epsilon(0.01));
        clock.advance(std::chrono::seconds(60));
        tracker.operation("docker_build");
        for (int step = 1; step <= 21; ++step) {
            tracker.step(step, 21, "RUN step " + std::to_string(step));
            clock.advance(std::chrono::seconds(10));
        }
        tracker.succeed();
    };
    ManualClock first;
    run_once(first, false);
    const auto recorded = azops::History::load(history);
    REQUIRE(recorded.operation("vm_create").has_value());
    CHECK(*recorded.operation("vm_create")->avg_seconds == doctest::Approx(120.0));
    CHECK(*recorded.operation("docker_install")->avg_seconds == doctest::Approx(60.0));
    REQUIRE(recorded.operation("docker_build").has_value());
    CHECK(recorded.operation("docker_build")->recent_runs.back().step_seconds.size() == 21u);
    ManualClock second;
    run_once(second, true);
    CHECK(azops::History::load(history).operation("vm_create")->samples == 2);
}

TEST_CASE("Tracker: a failed operation is not recorded in history") {
    ScratchDir dir;
    ManualClock clock;
    auto options = options_for(dir, clock);
    options.history_file = dir / "h.json";
    azops::Tracker tracker(options);
    tracker.begin("t");
    tracker.operation("vm_create");
    clock.advance(std::chrono::seconds(30));
    tracker.fail("quota exceeded");
    CHECK_FALSE(std::filesystem::exists(dir / "h.json"));
}

TEST_CASE("Tracker: silence much longer than the step takes sets stalled_seconds and what it cost") {
    ScratchDir dir;
    ManualClock clock;
    auto options = options_for(dir, clock);
    azops::Tracker tracker(options);
    tracker.set_vm(running_vm("Standard_D8ds_v5"));
    tracker.begin("run-waa");
    tracker.operation("benchmark");
    tracker.log("[2026-01-28 22:55:15,221 INFO run/262-MainProcess] Left tasks:");
    tracker.log("notepad: 13");
    clock.advance(std::chrono::minutes(4));
    CHECK_FALSE(tracker.snapshot().stalled_seconds.has_value());
    clock.advance(std::chrono::minutes(56));
    const auto s = tracker.snapshot();
    REQUIRE(s.stalled_seconds.has_value());
    CHECK(*s.stalled_seconds == doctest::Approx(3600.0));
    REQUIRE(s.stalled_cost_usd.has_value());
    CHECK(*s.stalled_cost_usd == doctest::Approx(0.452));
}

TEST_CASE("Tracker: the stall threshold is an option") {
    ScratchDir dir;
    ManualClock clock;
    auto options = options_for(dir, clock);
    options.eta.stall_min_seconds = 60;
    azops::Tracker tracker(options);
    tracker.begin("t");
    tracker.operation("docker_install");
    tracker.log("Executing docker install script");
    clock.advance(std::chrono::seconds(50));
    CHECK_FALSE(tracker.snapshot().stalled_seconds.has_value());
    clock.advance(std::chrono::seconds(20));
    REQUIRE(tracker.snapshot().stalled_seconds.has_value());
    CHECK(*tracker.snapshot().stalled_seconds == doctest::Approx(70));
}
