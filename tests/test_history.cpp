#include <azops/history.hpp>

#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

using azops_test::read_file;
using azops_test::ScratchDir;
using azops_test::write_file;

namespace {

const std::filesystem::path data = std::filesystem::path(AZOPS_TEST_DATA_DIR) / "history";

// Files in `dir` whose name starts with `prefix`.
std::vector<std::filesystem::path> files_starting(const std::filesystem::path& dir, const std::string& prefix) {
    std::vector<std::filesystem::path> found;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.path().filename().string().rfind(prefix, 0) == 0) found.push_back(e.path());
    }
    return found;
}

bool any_warning_contains(const std::vector<std::string>& warnings, const std::string& part) {
    for (const auto& w : warnings) {
        if (w.find(part) != std::string::npos) return true;
    }
    return false;
}

}  // namespace

TEST_CASE("a missing file is empty history, without a warning") {
    ScratchDir dir;
    const auto h = azops::History::load(dir / "azure_ops_history.json");
    CHECK(h.empty());
    CHECK_FALSE(h.corrupt());
    CHECK(h.warnings().empty());
    CHECK_FALSE(h.operation("docker_build").has_value());
}

TEST_CASE("the original specification's file reads as it is") {
    const auto h = azops::History::load(data / "original_shape.json");
    CHECK(h.warnings().empty());
    const auto build = h.operation("docker_build");
    REQUIRE(build);
    CHECK(*build->avg_seconds == doctest::Approx(1200));
    CHECK(build->samples == 5);
    CHECK(build->recent_runs.empty());
    const auto task = h.operation(azops::benchmark_task_key);
    REQUIRE(task);
    CHECK(*task->avg_seconds == doctest::Approx(180));
    CHECK(task->samples == 100);
    CHECK(h.operations() == std::vector<std::string>{"benchmark_per_task", "docker_build"});
}

TEST_CASE("record: a running mean of whole runs, steps kept, original keys and unknown keys untouched") {
    auto h = azops::History::parse(R"({"docker_build": {"avg_seconds": 1200, "samples": 5, "note": "mine"},
                                       "custom_op": {"anything": [1, 2]}})");
    REQUIRE(h.record("docker_build", {60.0, 2.0, 1700.0, 38.0}, {1}));
    const auto build = h.operation("docker_build");
    REQUIRE(build);
    CHECK(*build->avg_seconds == doctest::Approx(1300));  // (5 x 1200 + 1800) / 6
    CHECK(build->samples == 6);
    REQUIRE(build->recent_runs.size() == 1);
    CHECK(build->recent_runs[0].step_seconds == std::vector<double>{60.0, 2.0, 1700.0, 38.0});
    CHECK(build->recent_runs[0].cached_steps == std::vector<int>{1});
    CHECK(build->recent_seconds == std::vector<double>{1800.0});
    const auto doc = nlohmann::json::parse(h.to_json_text());
    CHECK(doc["docker_build"]["note"] == "mine");
    CHECK(doc["custom_op"]["anything"] == nlohmann::json::array({1, 2}));
    CHECK(doc["docker_build"]["samples"] == 6);
    // Read back from its own text.
    const auto again = azops::History::parse(h.to_json_text());
    CHECK(again.warnings().empty());
    CHECK(again.operation("docker_build")->recent_runs[0].total_seconds() == doctest::Approx(1800));
}

TEST_CASE("record_task: one benchmark task at a time under benchmark_per_task") {
    azops::History h = azops::History::load(data / "original_shape.json");
    REQUIRE(h.record_task(azops::benchmark_task_key, 202.0));
    const auto task = h.operation(azops::benchmark_task_key);
    CHECK(*task->avg_seconds == doctest::Approx((180.0 * 100 + 202.0) / 101));
    CHECK(task->samples == 101);
    CHECK(task->recent_seconds == std::vector<double>{202.0});
    CHECK(task->recent_runs.empty());
}

TEST_CASE("recent lists are capped — the mean keeps counting") {
    azops::History h;
    for (int i = 0; i < 150; ++i) h.record_task("benchmark_per_task", i);
    for (int i = 0; i < 30; ++i) h.record("docker_build", {1.0, static_cast<double>(i)});
    const auto task = h.operation("benchmark_per_task");
    CHECK(task->samples == 150);
    CHECK(*task->avg_seconds == doctest::Approx(74.5));
    REQUIRE(task->recent_seconds.size() == azops::History::max_recent_seconds);
    CHECK(task->recent_seconds.front() == doctest::Approx(50));  // oldest kept
    CHECK(task->recent_seconds.back() == doctest::Approx(149));
    const auto build = h.operation("docker_build");
    REQUIRE(build->recent_runs.size() == azops::History::max_recent_runs);
    CHECK(build->recent_runs.front().step_seconds[1] == doctest::Approx(10));
}

TEST_CASE("bad durations are not recorded and say why") {
    azops::History h;
    CHECK_FALSE(h.record("docker_build", {}));
    CHECK_FALSE(h.record("docker_build", {10.0, -1.0}));
    CHECK_FALSE(h.record("docker_build", {10.0, std::nan("")}));
    CHECK_FALSE(h.record_task("benchmark_per_task", INFINITY));
    CHECK(h.empty());
    CHECK(h.warnings().size() == 4);
    // Cached step numbers out of range are dropped, duplicates merged.
    REQUIRE(h.record("docker_build", {1.0, 2.0}, {2, 2, 0, 3}));
    CHECK(h.operation("docker_build")->recent_runs[0].cached_steps == std::vector<int>{2});
}

TEST_CASE("corrupt files read as empty history with a warning, and load never changes them") {
    for (const char* name : {"truncated.json", "garbage.txt", "trailing_garbage.json", "top_level_array.json"}) {
        CAPTURE(name);
        const std::string before = read_file(data / name);
        const auto h = azops::History::load(data / name);
        CHECK(h.empty());
        CHECK(h.corrupt());
        REQUIRE(h.warnings().size() == 1);
        CHECK(h.warnings()[0].find(name) != std::string::npos);
        CHECK(h.warnings()[0].find("moved aside") != std::string::npos);
        CHECK(read_file(data / name) == before);
    }
}

TEST_CASE("an empty file is empty history (nothing to keep), with a warning") {
    const auto h = azops::History::load(data / "empty.json");
    CHECK(h.empty());
    CHECK_FALSE(h.corrupt());
    CHECK(any_warning_contains(h.warnings(), "is empty"));
}

TEST_CASE("deep nesting is refused before parsing") {
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    const auto h = azops::History::parse(deep, "deep.json");
    CHECK(h.corrupt());
    CHECK(any_warning_contains(h.warnings(), "nested more than 64"));
    // Brackets inside strings do not count.
    const auto fine = azops::History::parse(R"({"op": {"avg_seconds": 1, "samples": 1, "label": ")" +
                                            std::string(200, '[') + R"("}})");
    CHECK_FALSE(fine.corrupt());
}

TEST_CASE("wrong types inside entries: the bad parts are ignored with warnings, the rest is used") {
    auto h = azops::History::load(data / "wrong_types.json");
    CHECK_FALSE(h.corrupt());
    CHECK(any_warning_contains(h.warnings(), "\"docker_build\": avg_seconds/samples"));
    CHECK(any_warning_contains(h.warnings(), "\"windows_boot\": is not an object"));
    CHECK(any_warning_contains(h.warnings(), "\"benchmark_per_task\": avg_seconds/samples"));
    CHECK(any_warning_contains(h.warnings(), "\"vm_create\": recent_seconds"));
    CHECK(any_warning_contains(h.warnings(), "\"vm_create\": some recent_runs"));
    CHECK_FALSE(h.operation("docker_build")->avg_seconds.has_value());
    CHECK_FALSE(h.operation("benchmark_per_task")->avg_seconds.has_value());
    const auto vm = h.operation("vm_create");
    CHECK(*vm->avg_seconds == doctest::Approx(150));
    CHECK(vm->recent_seconds.empty());
    REQUIRE(vm->recent_runs.size() == 2);  // the "fast" run and the one caching step 7 of 2 are dropped
    CHECK(vm->recent_runs[1].cached_steps == std::vector<int>{1});
    const auto install = h.operation("docker_install");
    CHECK(install->samples == 2);  // 2.0 is a whole count

    // Recording into a broken entry restarts its mean and says so; other keys stay.
    REQUIRE(h.record("docker_build", {100.0, 500.0}));
    CHECK(any_warning_contains(h.warnings(), "restarted from this run"));
    CHECK(*h.operation("docker_build")->avg_seconds == doctest::Approx(600));
    CHECK(h.operation("docker_build")->samples == 1);
    CHECK(nlohmann::json::parse(h.to_json_text())["docker_build"]["note"] == "kept by azops");
    REQUIRE(h.record_task("windows_boot", 840));
    CHECK(any_warning_contains(h.warnings(), "\"windows_boot\" was not an object; replaced"));
    REQUIRE(h.record("vm_create", {9.0, 141.0}));
    CHECK(h.operation("vm_create")->recent_seconds == std::vector<double>{150.0});
}

TEST_CASE("record_to_file: creates the folder and the file, keeps what others wrote") {
    ScratchDir dir;
    const auto path = dir / "benchmark_results" / "azure_ops_history.json";
    auto r = azops::History::record_to_file(path, "docker_build", {60.0, 540.0});
    CHECK(r.ok);
    CHECK(r.error.empty());
    r = azops::History::record_task_to_file(path, azops::benchmark_task_key, 175.0);
    CHECK(r.ok);
    const auto h = azops::History::load(path);
    CHECK(h.operation("docker_build")->samples == 1);
    CHECK(*h.operation(azops::benchmark_task_key)->avg_seconds == doctest::Approx(175));
    CHECK(std::filesystem::exists(path.string() + ".lock"));
    CHECK(files_starting(path.parent_path(), ".azure_ops_history.json.tmp.").empty());
}

TEST_CASE("record_to_file moves a corrupt file aside, byte for byte, and never overwrites it") {
    for (const char* name : {"truncated.json", "garbage.txt", "trailing_garbage.json", "top_level_array.json"}) {
        CAPTURE(name);
        ScratchDir dir;
        const auto path = dir / "azure_ops_history.json";
        const std::string original = read_file(data / name);
        write_file(path, original);
        const auto r = azops::History::record_to_file(path, "docker_build", {30.0, 600.0});
        REQUIRE(r.ok);
        REQUIRE(r.moved_aside.has_value());
        CHECK(r.moved_aside->filename().string().rfind("azure_ops_history.json.corrupt-", 0) == 0);
        CHECK(read_file(*r.moved_aside) == original);
        CHECK(any_warning_contains(r.warnings, "moved the corrupt history file to"));
        const auto h = azops::History::load(path);
        CHECK_FALSE(h.corrupt());
        CHECK(h.operation("docker_build")->samples == 1);
        // A second corrupt file in the same second gets its own name.
        write_file(path, original);
        const auto again = azops::History::record_to_file(path, "docker_build", {30.0, 600.0});
        REQUIRE(again.moved_aside.has_value());
        CHECK(*again.moved_aside != *r.moved_aside);
        CHECK(files_starting(dir.path(), "azure_ops_history.json.corrupt-").size() == 2);
    }
}

TEST_CASE("an empty file is simply replaced — a file that cannot be read is not overwritten") {
    ScratchDir dir;
    const auto path = dir / "azure_ops_history.json";
    write_file(path, "");
    auto r = azops::History::record_to_file(path, "docker_build", {5.0});
    CHECK(r.ok);
    CHECK_FALSE(r.moved_aside.has_value());
    CHECK(azops::History::load(path).operation("docker_build")->samples == 1);

    const auto folder_in_the_way = dir / "history_is_a_folder.json";
    std::filesystem::create_directory(folder_in_the_way);
    r = azops::History::record_to_file(folder_in_the_way, "docker_build", {5.0});
    CHECK_FALSE(r.ok);
    CHECK(r.error.find("cannot read history file") != std::string::npos);
    CHECK(std::filesystem::is_directory(folder_in_the_way));
    const auto h = azops::History::load(folder_in_the_way);
    CHECK(h.empty());
    CHECK(any_warning_contains(h.warnings(), "cannot read history file"));
}

TEST_CASE("record_to_file removes temporary files a killed writer left, under the lock") {
    ScratchDir dir;
    const auto path = dir / "azure_ops_history.json";
    write_file(dir / ".azure_ops_history.json.tmp.Ab12Cd", "{\"half\":");
    write_file(dir / "unrelated.tmp", "x");
    REQUIRE(azops::History::record_to_file(path, "docker_build", {5.0}).ok);
    CHECK(files_starting(dir.path(), ".azure_ops_history.json.tmp.").empty());
    CHECK(std::filesystem::exists(dir / "unrelated.tmp"));
}

TEST_CASE("invalid UTF-8 in a name is written, not thrown") {
    azops::History h;
    h.record_task(std::string("op\xff\xfe"), 3.0);
    const std::string text = h.to_json_text();
    CHECK(text.find("\xEF\xBF\xBD") != std::string::npos);  // U+FFFD
    CHECK_FALSE(azops::History::parse(text).corrupt());
}

TEST_CASE("8 processes x 50 records at once lose no sample") {
    ScratchDir dir;
    const auto path = dir / "azure_ops_history.json";
    constexpr int processes = 8;
    constexpr int records = 50;
    std::vector<pid_t> children;
    for (int p = 0; p < processes; ++p) {
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int failures = 0;
            for (int i = 0; i < records; ++i) {
                // Distinct values, so the mean checks every one of them arrived once.
                const double seconds = p * 1000.0 + i;
                if (!azops::History::record_to_file(path, "docker_build", {seconds}).ok) ++failures;
                if (!azops::History::record_task_to_file(path, azops::benchmark_task_key, seconds).ok) ++failures;
            }
            ::_exit(failures);
        }
        children.push_back(pid);
    }
    for (pid_t pid : children) {
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    double expected_mean = 0;
    for (int p = 0; p < processes; ++p) {
        for (int i = 0; i < records; ++i) expected_mean += p * 1000.0 + i;
    }
    expected_mean /= processes * records;
    const auto h = azops::History::load(path);
    REQUIRE_FALSE(h.corrupt());
    for (const char* op : {"docker_build", "benchmark_per_task"}) {
        CAPTURE(op);
        const auto entry = h.operation(op);
        REQUIRE(entry);
        CHECK(entry->samples == processes * records);
        CHECK(*entry->avg_seconds == doctest::Approx(expected_mean).epsilon(1e-9));
        CHECK(entry->recent_seconds.size() == azops::History::max_recent_seconds);
    }
}
