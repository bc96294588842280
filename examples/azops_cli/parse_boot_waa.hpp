// azops_cli/parse_boot_waa.hpp — `azops parse boot` and `azops parse waa`: replay a saved log through the
// Windows-boot or the WAA-benchmark parser and print what a tracker would see.
//
// Both read raw log bytes (ANSI colours, `\r` rewrites and invalid UTF-8 are fine), split them on
// '\n', sanitise every line, and print one JSON object per line: one per phase change or event, then a
// summary. Exit codes: 0 the log shows no failure, 1 it does (a `❯ ERROR:` the boot did not recover
// from; a traceback, ERROR line or interruption that ended the benchmark), 2 the input could not be read.
// Thread-safety: each call owns its parser. Errors: reported on `err` and through the exit code.
#pragma once

#include <azops/boot_parser.hpp>
#include <azops/log_tail.hpp>
#include <azops/waa_parser.hpp>

#include <nlohmann/json.hpp>

#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace azops_cli {

namespace parse_boot_waa_detail {

inline void print(std::ostream& out, const nlohmann::ordered_json& j) {
    out << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
}

template <typename T>
nlohmann::ordered_json or_null(const std::optional<T>& value) {
    return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

// Calls on_line(clean_line, line_number) for every line of `in`; false when the stream failed
// (could not be opened, or a read error part-way).
template <typename OnLine>
bool for_each_clean_line(std::istream& in, OnLine&& on_line) {
    if (!in) return false;
    azops::LineSplitter splitter;
    std::string scratch;
    long number = 0;
    const auto deliver = [&](std::string_view raw) { on_line(azops::sanitize_line_into(raw, scratch), ++number); };
    std::string chunk(64 * 1024, '\0');
    while (in) {
        in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        const auto got = static_cast<std::size_t>(in.gcount());
        if (got > 0) splitter.feed(std::string_view(chunk.data(), got), deliver);
    }
    if (in.bad()) return false;
    splitter.finish(deliver);
    return true;
}

inline nlohmann::ordered_json boot_state(const azops::BootLogParser& p) {
    return {{"phase", p.phase_name()},
            {"step", p.step()},
            {"total_steps", p.total_steps()},
            {"progress", p.progress_fraction()},
            {"detail", p.detail()},
            {"download_pct", or_null(p.download_pct())},
            {"download_eta_seconds", or_null(p.download_eta_seconds())},
            {"error", or_null(p.error())},
            {"vnc_hint_url", or_null(p.vnc_hint_url())}};
}

inline nlohmann::ordered_json waa_event_json(const azops::WaaEvent& e, long line) {
    nlohmann::ordered_json j = {{"event", std::string(azops::waa_event_kind_name(e.kind))}, {"line", line}};
    if (e.kind != azops::WaaEventKind::benchmark_finished) {
        j["task"] = e.task_index;
        j["total"] = e.total_tasks;
        j["domain"] = e.domain;
        j["task_id"] = e.task_id;
        j["rerun"] = e.rerun;
    }
    if (e.kind == azops::WaaEventKind::task_finished) {
        j["result"] = or_null(e.result);
        j["success"] = e.success;
        j["error"] = or_null(e.error);
    }
    if (e.kind == azops::WaaEventKind::benchmark_finished) j["average_score"] = or_null(e.average_score);
    j["log_time"] = e.log_time.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(e.log_time);
    return j;
}

inline nlohmann::ordered_json waa_state(const azops::WaaLogParser& p) {
    return {{"phase", p.phase_name()},
            {"detail", p.detail()},
            {"tasks_done", p.tasks_done()},
            {"total_tasks", p.total_tasks()},
            {"successes", p.successes()},
            {"failures", p.failures()},
            {"average_score", or_null(p.average_score())},
            {"progress", p.progress_fraction()},
            {"error", or_null(p.error())}};
}

}  // namespace parse_boot_waa_detail

inline int run_parse_boot(std::istream& in, std::ostream& out, std::ostream& err) {
    namespace d = parse_boot_waa_detail;
    azops::BootLogParser parser;
    long lines = 0;
    const bool readable = d::for_each_clean_line(in, [&](std::string_view line, long number) {
        lines = number;
        const azops::BootPhase before = parser.phase();
        if (!parser.feed(line)) return;
        nlohmann::ordered_json j = {{"event", parser.phase() != before ? "phase" : "progress"}, {"line", number}};
        j.update(d::boot_state(parser));
        d::print(out, j);
    });
    if (!readable) {
        err << "azops parse-boot: cannot read the log (read error after " << lines << " lines)\n";
        return 2;
    }
    if (!parser.is_boot_log()) err << "azops parse-boot: no dockurr/windows boot lines found\n";
    nlohmann::ordered_json summary = {{"event", "summary"}, {"lines", lines}, {"is_boot_log", parser.is_boot_log()},
                              {"restarts", parser.restarts()}};
    summary.update(d::boot_state(parser));
    d::print(out, summary);
    return parser.phase() == azops::BootPhase::failed ? 1 : 0;
}

inline int run_parse_waa(std::istream& in, std::ostream& out, std::ostream& err) {
    namespace d = parse_boot_waa_detail;
    azops::WaaLogParser parser;
    long lines = 0;
    std::string phase = parser.phase_name();
    std::optional<std::string> error;
    const bool readable = d::for_each_clean_line(in, [&](std::string_view line, long number) {
        lines = number;
        if (!parser.feed(line)) return;
        for (const auto& event : parser.take_events()) d::print(out, d::waa_event_json(event, number));
        if (parser.phase_name() != phase || parser.error() != error) {
            phase = parser.phase_name();
            error = parser.error();
            nlohmann::ordered_json j = {{"event", "phase"}, {"line", number}};
            j.update(d::waa_state(parser));
            d::print(out, j);
        }
    });
    if (!readable) {
        err << "azops parse-waa: cannot read the log (read error after " << lines << " lines)\n";
        return 2;
    }
    if (!parser.is_waa_log()) err << "azops parse-waa: no Windows Agent Arena lines found\n";
    nlohmann::ordered_json summary = {{"event", "summary"}, {"lines", lines}, {"is_waa_log", parser.is_waa_log()},
                              {"last_result", d::or_null(parser.last_result())}};
    summary.update(d::waa_state(parser));
    d::print(out, summary);
    return parser.error() ? 1 : 0;
}

}  // namespace azops_cli
