// libFuzzer target for azops::BootLogParser: any bytes, split into lines, sanitised as the tracker
// does, and raw as a careless caller might; the parser's promises must hold after every line.
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_boot_parser.cpp
#include <azops/boot_parser.hpp>
#include <azops/log_tail.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

void check(bool promise) {
    if (!promise) __builtin_trap();
}

void check_state(const azops::BootLogParser& p, double& last_progress) {
    const double progress = p.progress_fraction();
    check(progress >= last_progress && progress >= 0.0 && progress <= 1.0);
    last_progress = progress;
    check(p.step() >= 0 && p.step() <= p.total_steps());
    check((p.phase() == azops::BootPhase::failed) == p.error().has_value());
    if (const auto pct = p.download_pct()) check(*pct >= 0.0 && *pct <= 100.0);
    if (const auto eta = p.download_eta_seconds()) check(*eta >= 0.0);
    check(!p.phase_name().empty());
    check(p.detail().size() <= 2 * azops::max_line_bytes);
    if (const auto url = p.vnc_hint_url()) check(url->rfind("http", 0) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    azops::BootLogParser clean, raw;
    double clean_progress = 0, raw_progress = 0;
    std::string scratch;
    azops::LineSplitter splitter;
    const auto on_line = [&](std::string_view line) {
        const bool changed = clean.feed(azops::sanitize_line_into(line, scratch));
        check_state(clean, clean_progress);
        // Feeding the same line again may only report a change for progress-free repeats of a phase.
        if (!changed) check(!clean.feed(azops::sanitize_line_into(line, scratch)));
        raw.feed(line);
        check_state(raw, raw_progress);
    };
    splitter.feed(input, on_line);
    splitter.finish(on_line);
    return 0;
}
