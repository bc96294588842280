#include <azops/status.hpp>
#include <azops/status_writer.hpp>

#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using azops_test::read_file;
using azops_test::ScratchDir;

namespace {

// A status document of realistic size (the log tail makes it a few KiB).
std::string status_document(int n) {
    azops::OpsStatus s;
    s.step = n;
    for (int i = 0; i < 50; ++i) s.log_tail.push_back("#24 41.07 Collecting package-" + std::to_string(n * 50 + i));
    return azops::to_json_text(s);
}

// Forks a reader that parses `path` `reads` times; returns how many reads failed to parse.
// Meanwhile `write_once` is called as fast as possible in this process.
template <typename Write>
int parse_failures_while_writing(const std::filesystem::path& path, int reads, Write write_once) {
    const pid_t reader = ::fork();
    if (reader == 0) {
        int failures = 0;
        for (int i = 0; i < reads; ++i) {
            if (!azops::parse_status(read_file(path)).status) ++failures;
        }
        ::_exit(failures > 250 ? 250 : failures);
    }
    int n = 0;
    int wstatus = 0;
    while (::waitpid(reader, &wstatus, WNOHANG) == 0) write_once(n++);
    return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 255;
}

}  // namespace

TEST_CASE("write_file_atomically: a reader process never sees a partial file (100,000 reads)") {
    ScratchDir dir;
    const auto path = dir / "azure_ops_status.json";
    REQUIRE(azops::write_file_atomically(path, status_document(0)).ok);
    const int failures = parse_failures_while_writing(path, 100000, [&](int n) {
        azops::write_file_atomically(path, status_document(n));
    });
    CHECK(failures == 0);
}

TEST_CASE("the reader harness does catch a naive writer (control for the test above)") {
    ScratchDir dir;
    const auto path = dir / "naive.json";
    std::string big = status_document(0);
    big.insert(big.size() - 1, ",\"padding\":\"" + std::string(200000, 'p') + "\"");
    azops_test::write_file(path, big);
    const int failures = parse_failures_while_writing(path, 20000, [&](int) { azops_test::write_file(path, big); });
    CHECK(failures > 0);
}

TEST_CASE("write_file_atomically: new files are 0644, existing files keep their permissions") {
    ScratchDir dir;
    const auto path = dir / "s.json";
    REQUIRE(azops::write_file_atomically(path, "{}").ok);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
    ::chmod(path.c_str(), 0640);
    REQUIRE(azops::write_file_atomically(path, "{\"a\":1}").ok);
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);
    CHECK(read_file(path) == "{\"a\":1}");
}

TEST_CASE("write_file_atomically: a folder that cannot be written gives a clear error and leaves the file") {
    if (::geteuid() == 0) {
        // root ignores folder permissions; use a folder that does not exist instead.
        const auto result = azops::write_file_atomically("/nonexistent-azops-dir/s.json", "{}");
        CHECK_FALSE(result.ok);
        CHECK(result.error.find("cannot create a temporary file in /nonexistent-azops-dir") != std::string::npos);
        return;
    }
    ScratchDir dir;
    const auto path = dir / "s.json";
    REQUIRE(azops::write_file_atomically(path, "{\"old\":true}").ok);
    ::chmod(dir.path().c_str(), 0500);
    const auto result = azops::write_file_atomically(path, "{\"new\":true}");
    ::chmod(dir.path().c_str(), 0700);
    CHECK_FALSE(result.ok);
    CHECK(read_file(path) == "{\"old\":true}");
}

TEST_CASE("write_file_atomically: when rename cannot replace the target, it falls back in place and says so") {
    // A folder where the target should be makes rename fail with EISDIR, not EBUSY: not a fallback case.
    ScratchDir dir;
    const auto path = dir / "target";
    std::filesystem::create_directory(path);
    const auto refused = azops::write_file_atomically(path, "{}");
    CHECK_FALSE(refused.ok);
    CHECK_FALSE(refused.fell_back_in_place);
    CHECK(refused.error.find("cannot rename over") != std::string::npos);
    // No temporary file is left behind after a failure.
    int leftovers = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) leftovers += e.path() != path;
    CHECK(leftovers == 0);
}

TEST_CASE("write_in_place (the EBUSY fallback) rewrites the target and reports it") {
    ScratchDir dir;
    const auto path = dir / "bind-mounted.json";
    azops_test::write_file(path, "{\"old\":true}");
    const auto result = azops::detail::write_in_place(path, "{\"new\":true}", "cannot rename over x: Device or resource busy");
    CHECK(result.ok);
    CHECK(result.fell_back_in_place);
    CHECK(result.error.find("rewrote it in place instead") != std::string::npos);
    CHECK(read_file(path) == "{\"new\":true}");
}

TEST_CASE("remove_stale_temp_files: removes what a killed writer left, nothing else") {
    ScratchDir dir;
    const auto path = dir / "azure_ops_status.json";
    azops_test::write_file(dir / ".azure_ops_status.json.tmp.abc123", "{");
    azops_test::write_file(path, "{}");
    azops_test::write_file(dir / "other.json", "{}");
    azops::remove_stale_temp_files(path);
    CHECK_FALSE(std::filesystem::exists(dir / ".azure_ops_status.json.tmp.abc123"));
    CHECK(std::filesystem::exists(path));
    CHECK(std::filesystem::exists(dir / "other.json"));
}

TEST_CASE("StatusWriter: coalesces a flood of changes and writes the last state on destruction") {
    ScratchDir dir;
    const auto path = dir / "s.json";
    std::atomic<int> latest{0};
    azops::StatusWriterStats stats;
    const auto start = std::chrono::steady_clock::now();
    {
        azops::StatusWriter writer({path, std::chrono::milliseconds(100), std::chrono::milliseconds(2000)},
                                   [&] { return "{\"n\":" + std::to_string(latest.load()) + "}"; });
        for (int i = 1; i <= 1000000; ++i) {
            latest.store(i);
            writer.notify();
        }
        stats = writer.stats();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(stats.writes >= 1);
    CHECK(static_cast<double>(stats.writes) <= 10.0 * seconds + 2.0);
    CHECK(read_file(path) == "{\"n\":1000000}");
}

TEST_CASE("StatusWriter: the heartbeat rewrites the file while on, and stops when off") {
    ScratchDir dir;
    std::mutex m;
    std::condition_variable cv;
    int renders = 0;
    azops::StatusWriter writer({dir / "s.json", std::chrono::milliseconds(5), std::chrono::milliseconds(20)}, [&] {
        std::lock_guard<std::mutex> lock(m);
        ++renders;
        cv.notify_all();
        return std::string("{}");
    });
    writer.set_heartbeat(true);
    std::unique_lock<std::mutex> lock(m);
    CHECK(cv.wait_for(lock, std::chrono::seconds(10), [&] { return renders >= 5; }));
}

TEST_CASE("StatusWriter: a failing write is counted and reported, never thrown") {
    ScratchDir dir;
    const auto path = dir / "s.json";
    std::filesystem::create_directory(path);  // rename over a folder fails
    std::string reported;
    {
        azops::StatusWriter writer({path}, [] { return std::string("{}"); }, {},
                                   [&](const azops::AtomicWriteResult& r) { reported = r.error; });
        writer.flush();
        CHECK(writer.stats().failures >= 1);
        CHECK(writer.stats().last_error.find("cannot rename over") != std::string::npos);
    }
    CHECK(reported.find("cannot rename over") != std::string::npos);
}

TEST_CASE("StatusWriter: a writer killed with SIGKILL at random moments always leaves a parsable file") {
    ScratchDir dir;
    const auto path = dir / "s.json";
    for (int round = 0; round < 20; ++round) {
        const pid_t writer = ::fork();
        if (writer == 0) {
            for (int n = 0;; ++n) azops::write_file_atomically(path, status_document(n));
        }
        // Let it write for a moment that differs every round, then kill it mid-flight.
        for (int spin = 0; spin < 20000 * (round + 1); ++spin) {
            std::atomic_signal_fence(std::memory_order_seq_cst);
        }
        ::kill(writer, SIGKILL);
        ::waitpid(writer, nullptr, 0);
        if (std::filesystem::exists(path)) CHECK(azops::parse_status(read_file(path)).status.has_value());
        azops::remove_stale_temp_files(path);
    }
    int temp_files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) temp_files += e.path() != path;
    CHECK(temp_files == 0);
}
