// libFuzzer target for azops::WaaLogParser: any bytes, split into lines, sanitised as the tracker
// does, and raw as a careless caller might; the parser's promises must hold after every line.
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_waa_parser.cpp
#include <azops/log_tail.hpp>
#include <azops/waa_parser.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

void check(bool promise) {
    if (!promise) __builtin_trap();
}

void check_state(azops::WaaLogParser& p, double& last_progress) {
    const double progress = p.progress_fraction();
    check(progress >= last_progress && progress >= 0.0 && progress <= 1.0);
    last_progress = progress;
    check(p.tasks_done() >= 0 && p.total_tasks() >= 0 && p.agent_step() >= 0);
    check(p.successes() >= 0 && p.failures() >= 0);
    check(p.successes() + p.failures() == p.tasks_done());
    check((p.phase_name() == "failed") == p.error().has_value());
    check(!p.detail().empty());
    for (const auto& event : p.take_events()) {
        check(event.task_index >= 0 && event.total_tasks >= 0);
        if (event.kind == azops::WaaEventKind::task_finished) check(event.success == (event.result && *event.result > 0));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    azops::WaaLogParser clean, raw;
    double clean_progress = 0, raw_progress = 0;
    std::string scratch;
    azops::LineSplitter splitter;
    const auto on_line = [&](std::string_view line) {
        clean.feed(azops::sanitize_line_into(line, scratch));
        check_state(clean, clean_progress);
        raw.feed(line);
        check_state(raw, raw_progress);
    };
    splitter.feed(input, on_line);
    splitter.finish(on_line);
    return 0;
}
