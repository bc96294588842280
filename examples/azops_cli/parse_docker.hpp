// azops_cli/parse_docker.hpp — `azops parse docker [FILE|-]`: replays a captured `docker build` log
// through DockerStepParser.
//
// Reads raw bytes in 1 MiB blocks, splits them into lines (a line read across two blocks keeps at most
// 64 KiB), sanitises each line and feeds the parser, then prints one JSON object per line: one per step
// event, in order, and a summary last. Exit code: 0 when the log parsed (a build that succeeded, is still
// running, or no build at all), 1 when it shows a failed build, 2 when the input cannot be read.
// Used by the `azops` CLI, and as a program of its own by bench/parse_docker_main.cpp.
// Thread-safety: each call owns its parser. Errors: reported on `err` and through the exit code.
#pragma once

#include <azops/docker_parser.hpp>
#include <azops/log_tail.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstring>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace azops_cli {

namespace parse_docker_detail {

inline std::string to_json_line(const nlohmann::ordered_json& j) {
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

inline nlohmann::ordered_json optional_number(const std::optional<double>& value) {
    return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

inline nlohmann::ordered_json event_json(const azops::DockerStepEvent& event) {
    nlohmann::ordered_json j = {{"event", azops::to_string(event.kind)}, {"step", event.step}, {"total", event.total}};
    if (!event.instruction.empty()) j["instruction"] = event.instruction;
    if (event.seconds) j["seconds"] = *event.seconds;
    if (!event.message.empty()) j["message"] = event.message;
    return j;
}

inline const char* step_state(const azops::DockerStep& step) {
    if (step.cached) return "cached";
    if (step.done) return "done";
    if (step.failed) return "failed";
    if (step.cancelled) return "cancelled";
    return "running";
}

inline nlohmann::ordered_json summary_json(const azops::DockerStepParser& parser, std::size_t lines) {
    nlohmann::ordered_json steps = nlohmann::ordered_json::array();
    int cached = 0;
    for (const auto& step : parser.steps()) {
        if (step.cached) ++cached;
        steps.push_back({{"step", step.index},
                         {"stage", step.stage},
                         {"stage_step", step.stage_step},
                         {"stage_total", step.stage_total},
                         {"instruction", step.instruction},
                         {"state", step_state(step)},
                         {"seconds", optional_number(step.duration)},
                         {"output_clipped", step.output_clipped}});
    }
    return {{"event", "summary"},
            {"docker_build", parser.is_docker_build()},
            {"format", azops::to_string(parser.format())},
            {"lines", lines},
            {"step", parser.step()},
            {"total", parser.total_steps()},
            {"cached", cached},
            {"progress", parser.progress_fraction()},
            {"phase", parser.phase()},
            {"outcome", azops::to_string(parser.outcome())},
            {"error", parser.error().empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(parser.error())},
            {"steps", std::move(steps)}};
}

inline bool shows_failure(const azops::DockerStepParser& parser) {
    if (parser.outcome() == azops::BuildOutcome::failed) return true;
    for (const auto& step : parser.steps()) {
        if (step.failed) return true;
    }
    return false;
}

// Calls `on_line(line, plain)` for every line of `text`, which ends with '\n'. `plain` says the line holds
// only printable ASCII: such a line is its own sanitised form. With SSE2 one pass over 16 bytes at a
// time finds both the line ends and the bytes that need sanitising, so a plain line costs no second
// scan; without it, each line is found with memchr and judged by sanitize_line_into itself.
template <typename OnLine>
void for_each_line(std::string_view text, OnLine&& on_line) {
    const char* p = text.data();
    const char* const end = p + text.size();
    const char* line_start = p;
#if defined(__SSE2__)
    bool special = false;  // a byte below 0x20 (but the newline), 0x7F or above seen in the current line
    const __m128i newline = _mm_set1_epi8('\n');
    const __m128i space = _mm_set1_epi8(0x20);
    const __m128i del = _mm_set1_epi8(0x7F);
    for (; p + 16 <= end; p += 16) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        // Signed compare: bytes >= 0x80 are negative, so "below 0x20" catches them with the controls.
        auto specials = static_cast<unsigned>(
            _mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(bytes, space), _mm_cmpeq_epi8(bytes, del))));
        auto ends = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, newline)));
        while (ends != 0) {
            const unsigned at = static_cast<unsigned>(__builtin_ctz(ends));
            const unsigned upto = (2u << at) - 1;  // bits 0..at
            special = special || (specials & upto & ~(1u << at)) != 0;
            on_line(std::string_view(line_start, static_cast<std::size_t>(p + at - line_start)), !special);
            line_start = p + at + 1;
            special = false;
            specials &= ~upto;
            ends &= ends - 1;
        }
        special = special || specials != 0;
    }
#endif
    while (p < end) {
        const void* found = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
        if (found == nullptr) break;
        const auto* nl = static_cast<const char*>(found);
        on_line(std::string_view(line_start, static_cast<std::size_t>(nl - line_start)), false);
        line_start = p = nl + 1;
    }
}

// run_parse_docker with a chosen read size, so that tests can put block boundaries anywhere.
inline int run(std::istream& in, std::ostream& out, std::ostream& err, std::size_t block_size) {
    if (!in) {
        err << "azops parse docker: cannot read the input\n";
        return 2;
    }
    azops::DockerStepParser parser(azops::StepTiming::log_only);
    azops::LineSplitter carry;  // the line that spans two blocks, bounded like any split stream
    std::string scratch;
    std::size_t lines = 0;
    const auto feed = [&](std::string_view clean) {
        if (!parser.feed(clean)) return;
        for (const auto& event : parser.take_events()) out << to_json_line(event_json(event)) << '\n';
    };
    const auto on_line = [&](std::string_view raw, bool plain) {
        ++lines;
        feed(plain && raw.size() <= azops::max_line_bytes ? raw : azops::sanitize_line_into(raw, scratch));
    };
    const auto on_carried_line = [&](std::string_view raw) { on_line(raw, false); };

    std::vector<char> block(block_size);
    while (in) {
        in.read(block.data(), static_cast<std::streamsize>(block.size()));
        std::string_view data(block.data(), static_cast<std::size_t>(in.gcount()));
        if (carry.has_partial()) {
            const std::size_t nl = data.find('\n');
            carry.feed(data.substr(0, nl == std::string_view::npos ? data.size() : nl + 1), on_carried_line);
            data.remove_prefix(nl == std::string_view::npos ? data.size() : nl + 1);
        }
        const std::size_t last_nl = data.rfind('\n');
        const std::size_t complete = last_nl == std::string_view::npos ? 0 : last_nl + 1;
        for_each_line(data.substr(0, complete), on_line);
        if (complete < data.size()) carry.feed(data.substr(complete), on_carried_line);
    }
    if (in.bad()) {
        err << "azops parse docker: reading the input failed after " << lines << " lines\n";
        return 2;
    }
    carry.finish(on_carried_line);

    out << to_json_line(summary_json(parser, lines)) << '\n';
    if (!parser.is_docker_build()) err << "azops parse docker: no docker build output recognised\n";
    return shows_failure(parser) ? 1 : 0;
}

}  // namespace parse_docker_detail

inline int run_parse_docker(std::istream& in, std::ostream& out, std::ostream& err) {
    return parse_docker_detail::run(in, out, err, std::size_t{1} << 20);
}

}  // namespace azops_cli
