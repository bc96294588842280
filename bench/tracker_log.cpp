// What one output line costs the thread that logs it: `Tracker::log` (sanitise, Docker parser, ETA
// observation, log tail; the status file written by the tracker's own thread at its own pace) against
// a naive writer that, like the original Python tooling's `json.dump` into the status file, renders
// the whole status and rewrites the file on every update.
//
//   tracker_log [Google Benchmark flags] LOG [NAIVE_LINES]
//
// LOG is a docker build log (bench/gen_buildkit_log.cpp writes one). One repetition of
// `tracker_log` feeds every line of LOG to a fresh Tracker, the whole build once, so the parser sees
// the build from its first line to its last; the naive writer, thousands of times slower, takes the
// first NAIVE_LINES lines (default 1000). Both report wall time per line on the calling thread.
#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

namespace {

const azops_bench::LogLines* log_lines = nullptr;

void tracker_log(benchmark::State& state) {
    const auto& lines = log_lines->lines();
    azops_bench::TempFolder folder("azops-bench-log");
    azops::Tracker tracker(azops_bench::tracker_options(folder.path()));
    azops_bench::start_docker_build(tracker);
    std::size_t next = 0;
    for (auto _ : state) {
        tracker.log(lines[next]);
        if (++next == lines.size()) next = 0;
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["status_writes"] = static_cast<double>(tracker.writer_stats().writes);
}

// `open(path, "w")` and `json.dump(status, f)`: the file is truncated and rewritten in place.
bool rewrite_file(const std::filesystem::path& path, const std::string& text) {
    std::FILE* out = std::fopen(path.c_str(), "w");
    if (out == nullptr) return false;
    const bool written = std::fwrite(text.data(), 1, text.size(), out) == text.size();
    return std::fclose(out) == 0 && written;
}

void naive_writer(benchmark::State& state) {
    const auto& lines = log_lines->lines();
    azops_bench::TempFolder folder("azops-bench-naive");
    azops::TrackerOptions options = azops_bench::tracker_options(folder.path());
    // The same tracking, but its own writer idles: this loop is the only one publishing the status.
    options.status_file = folder.path() / "unused_status.json";
    options.min_write_interval = std::chrono::hours(1);
    options.heartbeat = std::chrono::hours(1);
    const std::filesystem::path target = folder.path() / "azure_ops_status.json";
    azops::Tracker tracker(options);
    azops_bench::start_docker_build(tracker);
    std::size_t next = 0;
    for (auto _ : state) {
        tracker.log(lines[next]);
        if (!rewrite_file(target, azops::to_json_text(tracker.snapshot()))) {
            state.SkipWithError("cannot rewrite the status file");
            break;
        }
        if (++next == lines.size()) next = 0;
    }
    state.SetItemsProcessed(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (argc < 2 || argc > 3) {
        std::cerr << "usage: " << argv[0] << " [Google Benchmark flags] LOG [NAIVE_LINES]\n";
        return 2;
    }
    std::unique_ptr<azops_bench::LogLines> lines;
    try {
        lines = std::make_unique<azops_bench::LogLines>(argv[1]);
    } catch (const std::exception& e) {
        std::cerr << "tracker_log: " << e.what() << "\n";
        return 1;
    }
    log_lines = lines.get();
    const auto whole_build = static_cast<benchmark::IterationCount>(lines->lines().size());
    const benchmark::IterationCount naive_lines = argc == 3 ? std::strtoll(argv[2], nullptr, 10) : 1000;
    if (naive_lines <= 0) {
        std::cerr << "tracker_log: NAIVE_LINES must be a positive count\n";
        return 2;
    }
    std::cerr << "tracker_log: " << lines->lines().size() << " lines, " << lines->bytes() << " bytes from " << argv[1]
              << "\n";
    benchmark::RegisterBenchmark("tracker_log", tracker_log)->Iterations(whole_build)->UseRealTime();
    benchmark::RegisterBenchmark("naive_writer", naive_writer)
        ->Iterations(std::min(naive_lines, whole_build))
        ->UseRealTime();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
