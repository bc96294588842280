// azops 0.1.0 — single-header edition.
// Generated from include/ by tools/amalgamate.py; do not edit: edit include/azops/ and regenerate.
// SPDX-License-Identifier: MIT
#pragma once
// #include <azops/azops.hpp> — begin
// azops/azops.hpp — the whole toolkit in one include.
//
// Everything here needs only the standard library, POSIX and nlohmann/json. The HTTP server needs
// cpp-httplib as well; it is included when AZOPS_WITH_SERVER is defined to 1 (the azops::server
// CMake target and meson's azops_server_dep define it), so a program that only writes status does
// not need cpp-httplib at all.

// #include <azops/version.hpp> — begin
// azops/version.hpp — the library's version, the single source for CMake and meson.
// Thread-safety: constants only. Errors: none.

#define AZOPS_VERSION_MAJOR 0
#define AZOPS_VERSION_MINOR 1
#define AZOPS_VERSION_PATCH 0
#define AZOPS_VERSION (AZOPS_VERSION_MAJOR * 10000 + AZOPS_VERSION_MINOR * 100 + AZOPS_VERSION_PATCH)
#define AZOPS_VERSION_STRING "0.1.0"
// #include <azops/version.hpp> — end
// #include <azops/log_tail.hpp> — begin
// azops/log_tail.hpp — turning raw output into lines a person (and a JSON file) can hold.
//
// Owns: sanitising one raw output line (ANSI CSI/OSC escapes removed, a `\r` rewrite keeps only the
// text after the last `\r`, invalid UTF-8 replaced by U+FFFD, NUL and other control bytes removed,
// lines over `max_line_bytes` cut with a visible marker), splitting a byte stream into lines without
// unbounded buffering, and the bounded tail of the last N lines.
// Thread-safety: the free functions are pure and reentrant; LineSplitter and LogTail are plain values,
// to be guarded by their owner. Errors: none — every byte sequence gives a valid, bounded UTF-8 line.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace azops {

// A sanitised line never holds more than this many bytes of text, plus the cut marker.
inline constexpr std::size_t max_line_bytes = 4096;

namespace detail {

inline constexpr char escape_byte = '\x1b';
inline constexpr std::string_view replacement_char = "\xEF\xBF\xBD";  // U+FFFD

// The word tests below look at eight bytes at a time, since most build output is plain ASCII and
// every line is checked. In a word of ASCII bytes, b + 0x01 reaches the high bit only for DEL and
// b + 0x60 only for b >= 0x20, and no sum carries into the next byte; a non-ASCII byte sets the high
// bit itself (its carries may then mark neighbours, harmless: the word is not plain either way).
inline constexpr std::uint64_t byte_ones = 0x0101010101010101ULL;
inline constexpr std::uint64_t byte_highs = 0x8080808080808080ULL;

// Nonzero when some byte of the word is not printable ASCII (0x20–0x7E).
inline std::uint64_t non_plain_bytes(std::uint64_t w) noexcept {
    return (w | (w + byte_ones) | ~(w + byte_ones * 0x60)) & byte_highs;
}

// True when every byte is printable ASCII: such a line needs no work. The last bytes are read as one
// word overlapping the previous one and nothing branches on a byte, so lines of every length cost
// the same few branches.
inline bool is_plain_ascii(std::string_view s) noexcept {
    const std::size_t n = s.size();
    if (n == 0) return true;
    std::uint64_t w = byte_ones * 0x20;  // spaces are plain: they pad a short line
    if (n < 8) {
        std::memcpy(&w, s.data(), n);
        return non_plain_bytes(w) == 0;
    }
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
        std::memcpy(&w, s.data() + i, 8);
        seen |= non_plain_bytes(w);
    }
    std::memcpy(&w, s.data() + n - 8, 8);
    return (seen | non_plain_bytes(w)) == 0;
}

// The part of a line a terminal would finally show after carriage returns: trailing `\r`s
// (CRLF endings) are dropped, then only the text after the last remaining `\r` is kept.
inline std::string_view after_last_carriage_return(std::string_view s) noexcept {
    if (s.empty() || std::memchr(s.data(), '\r', s.size()) == nullptr) return s;  // no `\r`: the usual case
    while (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    const auto cr = s.rfind('\r');
    return cr == std::string_view::npos ? s : s.substr(cr + 1);
}

// Length of the escape sequence starting at s[i] == ESC (at least 1; an unterminated sequence runs
// to the end of the line, so it can never leak half an escape into the output).
inline std::size_t escape_length(std::string_view s, std::size_t i) noexcept {
    const std::size_t n = s.size();
    if (i + 1 >= n) return n - i;
    const char kind = s[i + 1];
    if (kind == '[') {  // CSI: parameters 0x30–0x3F, intermediates 0x20–0x2F, one final 0x40–0x7E
        std::size_t j = i + 2;
        while (j < n && s[j] >= 0x20 && s[j] <= 0x3F) ++j;
        if (j < n && s[j] >= 0x40 && s[j] <= 0x7E) ++j;
        return j - i;
    }
    if (kind == ']' || kind == 'P' || kind == '_' || kind == '^' || kind == 'X') {
        // OSC / DCS / APC / PM / SOS: a string ended by BEL or by ESC '\'.
        std::size_t j = i + 2;
        while (j < n) {
            if (s[j] == '\a') return j + 1 - i;
            if (s[j] == escape_byte && j + 1 < n && s[j + 1] == '\\') return j + 2 - i;
            ++j;
        }
        return n - i;
    }
    // Other escapes: intermediates 0x20–0x2F, then one final byte (e.g. ESC ( B, ESC 7, ESC =).
    std::size_t j = i + 1;
    while (j < n && s[j] >= 0x20 && s[j] <= 0x2F) ++j;
    if (j < n) ++j;
    return j - i;
}

// Length of the valid UTF-8 sequence at s[i] (a lead byte >= 0x80), or 0 when it is invalid;
// `invalid_span` then tells how many bytes form the maximal invalid subpart to replace by one U+FFFD.
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i, std::size_t& invalid_span) noexcept {
    const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char lead = at(i);
    std::size_t need = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) need = 1;
    else if (lead == 0xE0) { need = 2; lo = 0xA0; }
    else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) need = 2;
    else if (lead == 0xED) { need = 2; hi = 0x9F; }
    else if (lead == 0xF0) { need = 3; lo = 0x90; }
    else if (lead >= 0xF1 && lead <= 0xF3) need = 3;
    else if (lead == 0xF4) { need = 3; hi = 0x8F; }
    else { invalid_span = 1; return 0; }
    std::size_t k = 1;
    for (; k <= need; ++k) {
        if (i + k >= s.size()) break;
        const unsigned char c = at(i + k);
        const unsigned char min = (k == 1) ? lo : 0x80;
        const unsigned char max = (k == 1) ? hi : 0xBF;
        if (c < min || c > max) break;
    }
    if (k == need + 1) return need + 1;
    invalid_span = k;
    return 0;
}

inline std::string cut_marker(std::size_t cut_bytes) {
    return " \xE2\x80\xA6[cut " + std::to_string(cut_bytes) + " bytes]";
}

inline bool is_printable_ascii(unsigned char c) noexcept { return (c >= 0x20 && c < 0x7F) || c == '\t'; }

// Where the run of printable ASCII (tabs included) that starts at s[i] ends.
inline std::size_t end_of_printable_run(std::string_view s, std::size_t i) noexcept {
    for (std::uint64_t w; i + 8 <= s.size(); i += 8) {
        std::memcpy(&w, s.data() + i, 8);
        if (non_plain_bytes(w) != 0) break;
    }
    while (i < s.size() && is_printable_ascii(static_cast<unsigned char>(s[i]))) ++i;
    return i;
}

// Appends text up to `max_line_bytes` and counts what did not fit. A run of ASCII may be split
// anywhere; a multi-byte character is appended whole or not at all.
struct BoundedLine {
    std::string& out;
    std::size_t cut_bytes = 0;

    void append(std::string_view piece) {
        if (cut_bytes != 0) {
            cut_bytes += piece.size();
            return;
        }
        const std::size_t room = max_line_bytes - out.size();
        const bool splittable = static_cast<unsigned char>(piece.front()) < 0x80;
        const std::size_t take = piece.size() <= room ? piece.size() : (splittable ? room : 0);
        out.append(piece.substr(0, take));
        cut_bytes += piece.size() - take;
    }
};

}  // namespace detail

// Sanitises `raw` and returns a view of the result: `raw` itself when it is already clean (no
// allocation), otherwise a view into `scratch`, which the caller keeps alive while using the view.
// `already_cut` counts bytes of this line that were dropped before it got here (LineSplitter's
// bound); they are added to the cut marker so it tells the whole loss.
inline std::string_view sanitize_line_into(std::string_view raw, std::string& scratch, std::size_t already_cut = 0) {
    if (already_cut == 0 && raw.size() <= max_line_bytes && detail::is_plain_ascii(raw)) return raw;
    const std::string_view text = detail::after_last_carriage_return(raw);
    scratch.clear();
    scratch.reserve(text.size() < max_line_bytes ? text.size() : max_line_bytes + 32);
    detail::BoundedLine line{scratch};
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == static_cast<unsigned char>(detail::escape_byte)) {
            i += detail::escape_length(text, i);
        } else if (c < 0x80) {
            const std::size_t end = detail::end_of_printable_run(text, i);
            if (end > i) {
                line.append(text.substr(i, end - i));
                i = end;
            } else {
                ++i;  // a control byte: dropped
            }
        } else {
            std::size_t invalid_span = 0;
            const std::size_t len = detail::utf8_sequence_length(text, i, invalid_span);
            if (len != 0) {
                line.append(text.substr(i, len));
                i += len;
            } else {
                line.append(detail::replacement_char);
                i += invalid_span;
            }
        }
    }
    line.cut_bytes += already_cut;
    if (line.cut_bytes != 0) scratch += detail::cut_marker(line.cut_bytes);
    return scratch;
}

// Sanitises one raw output line (without its trailing '\n') into valid, bounded UTF-8 text.
inline std::string sanitize_line(std::string_view raw, std::size_t already_cut = 0) {
    std::string scratch;
    const std::string_view clean = sanitize_line_into(raw, scratch, already_cut);
    if (clean.data() != scratch.data()) return std::string(clean);
    return scratch;
}

// Splits a byte stream into lines, across chunk boundaries, without unbounded buffering: a line
// longer than `max_buffered` keeps only its head and the count of bytes dropped, so a 16 MiB line
// without a newline costs at most `max_buffered` bytes of memory. The bound is the same however the
// stream was chunked.
//
// `on_line` is called as on_line(std::string_view head, std::size_t cut_bytes) when it takes two
// arguments (hand both to `sanitize_line_into`, which then reports the whole loss), else as
// on_line(std::string_view line) with the cut marker already appended to a cut line.
//
// A line redrawn with `\r` (a download or pip bar) may not end for minutes. The splitter keeps only
// what a terminal would still show of it (text overwritten by a `\r` is dropped, with what it had
// cut), so such a line costs no more memory than its last drawing; the three-argument `feed` also
// hands that drawing to `on_redraw` (called like `on_line`, at most once per chunk) as it changes.
class LineSplitter {
public:
    explicit LineSplitter(std::size_t max_buffered = std::size_t{64} * 1024) : max_buffered_(max_buffered == 0 ? 1 : max_buffered) {}

    template <typename OnLine>
    void feed(std::string_view chunk, OnLine&& on_line) {
        feed(chunk, on_line, [](std::string_view, std::size_t) {});
    }

    template <typename OnLine, typename OnRedraw>
    void feed(std::string_view chunk, OnLine&& on_line, OnRedraw&& on_redraw) {
        while (!chunk.empty()) {
            const void* nl = std::memchr(chunk.data(), '\n', chunk.size());
            if (nl == nullptr) {
                buffer(chunk);
                if (!pending_.empty() && pending_.front() == '\r') emit(on_redraw, std::string_view(pending_), dropped_);
                return;
            }
            const auto len = static_cast<std::size_t>(static_cast<const char*>(nl) - chunk.data());
            const std::string_view line = chunk.substr(0, len);
            if (pending_.empty() && dropped_ == 0 && len <= max_buffered_) {
                emit(on_line, line, 0);
            } else {  // continues a buffered line, or is too long to keep whole (and may hold a redraw)
                buffer(line);
                emit_pending(on_line);
            }
            chunk.remove_prefix(len + 1);
        }
    }

    // Emits the last unterminated line, if any (call once at end of stream).
    template <typename OnLine>
    void finish(OnLine&& on_line) {
        if (has_partial()) emit_pending(on_line);
    }

    bool has_partial() const noexcept { return !pending_.empty() || dropped_ != 0; }

private:
    // Appends a piece of the unterminated line. A `\r` followed by text sends a terminal back to the
    // line's start, so what came before it (kept or cut) no longer shows: only the `\r` and the
    // new drawing are kept.
    void buffer(std::string_view piece) {
        if (piece.empty()) return;
        const std::size_t redraw = last_redraw(piece);
        if (redraw != std::string_view::npos) {
            pending_.clear();
            dropped_ = 0;
            piece.remove_prefix(redraw);
        } else if (ended_with_cr_ && piece.front() != '\r') {
            pending_.assign(1, '\r');  // the `\r` ended the previous chunk
            dropped_ = 0;
        }
        ended_with_cr_ = piece.back() == '\r';
        const std::size_t room = max_buffered_ - std::min(max_buffered_, pending_.size());
        const std::size_t take = std::min(room, piece.size());
        pending_.append(piece.substr(0, take));
        dropped_ += piece.size() - take;
    }

    // Position of the last `\r` followed by something other than `\r` (a redraw, where a trailing
    // `\r` may be half of a CRLF), or npos.
    static std::size_t last_redraw(std::string_view piece) noexcept {
        if (std::memchr(piece.data(), '\r', piece.size()) == nullptr) return std::string_view::npos;  // the usual case
        std::size_t end = piece.size();
        while (end > 0 && piece[end - 1] == '\r') --end;
        return end == 0 ? std::string_view::npos : piece.substr(0, end).rfind('\r');
    }

    template <typename OnLine>
    void emit_pending(OnLine& on_line) {
        emit(on_line, std::string_view(pending_), dropped_);
        pending_.clear();
        dropped_ = 0;
        ended_with_cr_ = false;
    }

    template <typename OnLine>
    void emit(OnLine& on_line, std::string_view head, std::size_t cut_bytes) {
        if constexpr (std::is_invocable_v<OnLine&, std::string_view, std::size_t>) {
            on_line(head, cut_bytes);
        } else if (cut_bytes == 0) {
            on_line(head);
        } else {
            on_line(std::string(head) + detail::cut_marker(cut_bytes));
        }
    }

    std::size_t max_buffered_;
    std::string pending_;
    std::size_t dropped_ = 0;
    bool ended_with_cr_ = false;  // the unterminated line's last byte, kept or cut, was `\r`
};

// The last `capacity` lines, oldest first; pushing beyond capacity drops the oldest. A ring, so a
// task that logs ten million lines holds exactly `capacity` of them.
class LogTail {
public:
    explicit LogTail(std::size_t capacity = 50) : ring_(capacity == 0 ? 1 : capacity) {}

    // Copies into the oldest slot's own buffer: once the ring has filled, a line no longer than the
    // slot's earlier ones costs no allocation (a slot keeps the capacity of the longest line it held,
    // which for sanitised lines is bounded by max_line_bytes plus the cut marker).
    void push(std::string_view line) {
        ring_[next_].assign(line.data(), line.size());
        if (++next_ == ring_.size()) next_ = 0;  // not `%`: a division per line shows
        if (size_ < ring_.size()) ++size_;
        ++total_;
    }

    // Replaces the newest line (a line still being redrawn); pushes when there is none.
    void replace_last(std::string_view line) {
        if (size_ == 0) return push(line);
        ring_[newest()].assign(line.data(), line.size());
    }

    // The newest line; empty when there is none.
    std::string_view last() const noexcept { return size_ == 0 ? std::string_view() : std::string_view(ring_[newest()]); }

    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        out.reserve(size_);
        const std::size_t first = (next_ + ring_.size() - size_) % ring_.size();
        for (std::size_t k = 0; k < size_; ++k) out.push_back(ring_[(first + k) % ring_.size()]);
        return out;
    }

    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return ring_.size(); }
    std::uint64_t total_lines() const noexcept { return total_; }

private:
    std::size_t newest() const noexcept { return (next_ == 0 ? ring_.size() : next_) - 1; }

    std::vector<std::string> ring_;
    std::size_t next_ = 0;
    std::size_t size_ = 0;
    std::uint64_t total_ = 0;
};

}  // namespace azops
// #include <azops/log_tail.hpp> — end
// #include <azops/status.hpp> — begin
// azops/status.hpp — the status of one task, and its JSON form (`azure_ops_status.json`, schema
// `azops.status/1`).
//
// Owns: azops::OpsStatus with every field of the status-file table in DESIGN.md (plus the additions
// listed in the README), its conversion to and from JSON, and ISO-8601 UTC time formatting.
// Thread-safety: plain values; no shared state. Errors: `to_json_text` never throws on bad text
// (invalid UTF-8 becomes U+FFFD); `status_from_json` throws nlohmann::json::exception on a document
// whose fields have the wrong types, and `parse_status` reports instead of throwing.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace azops {

inline constexpr std::string_view status_schema = "azops.status/1";

// One operation (or phase) the task went through, for the page's timeline.
struct TimelineEntry {
    std::string name;
    std::string state = "running";  // running, succeeded, failed, cancelled
    std::string started_at;
    std::optional<std::string> ended_at;
    double duration_seconds = 0.0;

};

struct OpsStatus {
    // Fields of the original specification.
    std::string operation = "idle";
    std::string phase;
    int step = 0;
    int total_steps = 0;
    double progress_pct = 0.0;
    std::vector<std::string> log_tail;
    std::string started_at;
    double elapsed_seconds = 0.0;
    std::optional<double> eta_seconds;
    std::optional<double> cost_usd = 0.0;         // null only when the rate is unknown
    std::optional<double> hourly_rate_usd = 0.0;  // null when the rate is unknown
    std::optional<std::string> vm_ip;
    std::optional<std::string> vm_state;
    std::optional<std::string> vnc_url;
    std::optional<std::string> error;
    // Additions of DESIGN.md.
    std::string schema{status_schema};
    std::string task;
    std::string state = "running";  // running, succeeded, failed, cancelled
    std::string detail;
    std::string updated_at;
    std::optional<double> projected_cost_usd;
    std::string eta_source = "none";  // history, progress, blend, none
    std::optional<std::string> vm_name;
    std::optional<std::string> vm_size;
    std::optional<std::string> region;
    std::vector<TimelineEntry> timeline;
    bool cancellable = false;
    std::optional<double> stalled_seconds;
    std::string status_file;
    // Additions of this library (README, "Status file").
    std::optional<double> eta_low_seconds;
    std::optional<double> eta_high_seconds;
    std::string rate_source;
    bool rate_known = true;
    bool billing_assumed = false;
    std::optional<double> stalled_cost_usd;
    std::optional<std::string> idle_deallocate_at;
    std::optional<std::string> notice;
    std::optional<int> tasks_succeeded;  // benchmark tasks that passed so far (null: not a benchmark)
    std::optional<int> tasks_failed;     // benchmark tasks that failed so far
    bool log_partial = false;  // the last `log_tail` line has not ended yet: it is still being redrawn
};

// "2026-11-29T03:38:45Z": ISO-8601, UTC, whole seconds.
inline std::string iso8601_utc(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(
        std::chrono::time_point_cast<std::chrono::seconds>(t));
    std::tm utc{};
    gmtime_r(&secs, &utc);
    std::array<char, 32> buf{};
    const std::size_t length = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &utc);
    return {buf.data(), length};
}

namespace detail {

template <typename T>
void put_optional(nlohmann::json& j, const char* key, const std::optional<T>& value) {
    j[key] = value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

template <typename T>
void get_optional(const nlohmann::json& j, const char* key, std::optional<T>& value) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        value.reset();
    } else {
        value = it->template get<T>();
    }
}

template <typename T>
void get_if_present(const nlohmann::json& j, const char* key, T& value) {
    const auto it = j.find(key);
    if (it != j.end() && !it->is_null()) value = it->template get<T>();
}

}  // namespace detail

inline void to_json(nlohmann::json& j, const TimelineEntry& e) {
    j = nlohmann::json{{"name", e.name}, {"state", e.state}, {"started_at", e.started_at}};
    detail::put_optional(j, "ended_at", e.ended_at);
    j["duration_seconds"] = e.duration_seconds;
}

inline void from_json(const nlohmann::json& j, TimelineEntry& e) {
    detail::get_if_present(j, "name", e.name);
    detail::get_if_present(j, "state", e.state);
    detail::get_if_present(j, "started_at", e.started_at);
    detail::get_optional(j, "ended_at", e.ended_at);
    detail::get_if_present(j, "duration_seconds", e.duration_seconds);
}

inline void to_json(nlohmann::json& j, const OpsStatus& s) {
    using detail::put_optional;
    j = nlohmann::json::object();
    j["operation"] = s.operation;
    j["phase"] = s.phase;
    j["step"] = s.step;
    j["total_steps"] = s.total_steps;
    j["progress_pct"] = s.progress_pct;
    j["log_tail"] = s.log_tail;
    j["started_at"] = s.started_at;
    j["elapsed_seconds"] = s.elapsed_seconds;
    put_optional(j, "eta_seconds", s.eta_seconds);
    put_optional(j, "cost_usd", s.cost_usd);
    put_optional(j, "hourly_rate_usd", s.hourly_rate_usd);
    put_optional(j, "vm_ip", s.vm_ip);
    put_optional(j, "vm_state", s.vm_state);
    put_optional(j, "vnc_url", s.vnc_url);
    put_optional(j, "error", s.error);
    j["schema"] = s.schema;
    j["task"] = s.task;
    j["state"] = s.state;
    j["detail"] = s.detail;
    j["updated_at"] = s.updated_at;
    put_optional(j, "projected_cost_usd", s.projected_cost_usd);
    j["eta_source"] = s.eta_source;
    put_optional(j, "vm_name", s.vm_name);
    put_optional(j, "vm_size", s.vm_size);
    put_optional(j, "region", s.region);
    j["timeline"] = s.timeline;
    j["cancellable"] = s.cancellable;
    put_optional(j, "stalled_seconds", s.stalled_seconds);
    j["status_file"] = s.status_file;
    put_optional(j, "eta_low_seconds", s.eta_low_seconds);
    put_optional(j, "eta_high_seconds", s.eta_high_seconds);
    j["rate_source"] = s.rate_source;
    j["rate_known"] = s.rate_known;
    j["billing_assumed"] = s.billing_assumed;
    put_optional(j, "stalled_cost_usd", s.stalled_cost_usd);
    put_optional(j, "idle_deallocate_at", s.idle_deallocate_at);
    put_optional(j, "notice", s.notice);
    put_optional(j, "tasks_succeeded", s.tasks_succeeded);
    put_optional(j, "tasks_failed", s.tasks_failed);
    j["log_partial"] = s.log_partial;
}

// Reads a status document; absent fields keep their defaults, so documents written by older
// versions (or by the original tooling, which had only the first fifteen fields) still load.
inline void from_json(const nlohmann::json& j, OpsStatus& s) {
    using detail::get_if_present;
    using detail::get_optional;
    get_if_present(j, "operation", s.operation);
    get_if_present(j, "phase", s.phase);
    get_if_present(j, "step", s.step);
    get_if_present(j, "total_steps", s.total_steps);
    get_if_present(j, "progress_pct", s.progress_pct);
    get_if_present(j, "log_tail", s.log_tail);
    get_if_present(j, "started_at", s.started_at);
    get_if_present(j, "elapsed_seconds", s.elapsed_seconds);
    get_optional(j, "eta_seconds", s.eta_seconds);
    get_optional(j, "cost_usd", s.cost_usd);
    get_optional(j, "hourly_rate_usd", s.hourly_rate_usd);
    get_optional(j, "vm_ip", s.vm_ip);
    get_optional(j, "vm_state", s.vm_state);
    get_optional(j, "vnc_url", s.vnc_url);
    get_optional(j, "error", s.error);
    get_if_present(j, "schema", s.schema);
    get_if_present(j, "task", s.task);
    get_if_present(j, "state", s.state);
    get_if_present(j, "detail", s.detail);
    get_if_present(j, "updated_at", s.updated_at);
    get_optional(j, "projected_cost_usd", s.projected_cost_usd);
    get_if_present(j, "eta_source", s.eta_source);
    get_optional(j, "vm_name", s.vm_name);
    get_optional(j, "vm_size", s.vm_size);
    get_optional(j, "region", s.region);
    get_if_present(j, "timeline", s.timeline);
    get_if_present(j, "cancellable", s.cancellable);
    get_optional(j, "stalled_seconds", s.stalled_seconds);
    get_if_present(j, "status_file", s.status_file);
    get_optional(j, "eta_low_seconds", s.eta_low_seconds);
    get_optional(j, "eta_high_seconds", s.eta_high_seconds);
    get_if_present(j, "rate_source", s.rate_source);
    get_if_present(j, "rate_known", s.rate_known);
    get_if_present(j, "billing_assumed", s.billing_assumed);
    get_optional(j, "stalled_cost_usd", s.stalled_cost_usd);
    get_optional(j, "idle_deallocate_at", s.idle_deallocate_at);
    get_optional(j, "notice", s.notice);
    get_optional(j, "tasks_succeeded", s.tasks_succeeded);
    get_optional(j, "tasks_failed", s.tasks_failed);
    get_if_present(j, "log_partial", s.log_partial);
}

// Serialises without ever throwing on text: invalid UTF-8 becomes U+FFFD rather than an exception
// in the middle of a half-written document.
inline std::string to_json_text(const nlohmann::json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline std::string to_json_text(const OpsStatus& s, int indent = -1) {
    return to_json_text(nlohmann::json(s), indent);
}

// The outcome of reading a status document: the status, or why there is none.
struct ParsedStatus {
    std::optional<OpsStatus> status;
    std::string error;
};

inline ParsedStatus parse_status(std::string_view text) {
    const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return {std::nullopt, "not valid JSON"};
    if (!j.is_object()) return {std::nullopt, "not a JSON object"};
    try {
        return {j.get<OpsStatus>(), {}};
    } catch (const nlohmann::json::exception& e) {
        return {std::nullopt, std::string("a field has the wrong type: ") + e.what()};
    }
}

}  // namespace azops
// #include <azops/status.hpp> — end
// #include <azops/status_writer.hpp> — begin
// azops/status_writer.hpp — atomic, coalesced writing of the status file.
//
// Owns: `write_file_atomically` (temporary file in the target's folder, write, optional fsync,
// rename over the target, in-place fallback where rename cannot replace it) and `StatusWriter`, a
// background thread that writes whenever the status changed — at most once per `min_interval`, at
// least once per `heartbeat` while the heartbeat is on, and once more on `flush()` and destruction.
// Thread-safety: `notify()` is lock-free in the common case and may be called from any thread;
// `flush()` may be called from any thread; the render callback runs on the writer's thread or on the
// thread calling flush(), never concurrently with itself.
// Errors: never throws into the caller after construction; failures are counted and their message
// is kept in `stats().last_error` (and handed to the owner through `on_write_error`, which also hears
// of the first good write after a failure, so the owner can stop reporting it).

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace azops {

struct AtomicWriteOptions {
    bool durable = false;          // fsync the file before rename and the folder after (history, not status)
    mode_t new_file_mode = 0644;   // permissions when the target does not exist yet
};

struct AtomicWriteResult {
    bool ok = false;
    bool fell_back_in_place = false;  // rename could not replace the target; it was rewritten in place
    std::string error;                // why it failed, or why the fallback was needed
};

namespace detail {

inline std::string errno_text(const char* what, const std::filesystem::path& path, int err) {
    return std::string(what) + " " + path.string() + ": " + std::generic_category().message(err);
}

inline bool write_all(int fd, std::string_view data) noexcept {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

inline void fsync_folder(const std::filesystem::path& folder) noexcept {
    const int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

// Where `rename` cannot replace the target (EBUSY on a single-file bind mount, EXDEV), the only
// way left is to rewrite the target in place; readers may then see a partial file, so it is reported.
inline AtomicWriteResult write_in_place(const std::filesystem::path& target, std::string_view content,
                                        const std::string& why) {
    AtomicWriteResult result;
    result.fell_back_in_place = true;
    const int fd = ::open(target.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) {
        result.error = why + "; in-place fallback failed: " + errno_text("open", target, errno);
        return result;
    }
    const bool written = write_all(fd, content);
    const int err = errno;
    const bool closed = ::close(fd) == 0;
    result.ok = written && closed;
    result.error = why + (result.ok ? "; rewrote it in place instead (not atomic)"
                                    : "; in-place fallback failed: " + errno_text("write", target, err));
    return result;
}

// Prefix of this target's temporary files: hidden, and never matching the target's own name.
inline std::string temp_prefix(const std::filesystem::path& target) {
    return "." + target.filename().string() + ".tmp.";
}

}  // namespace detail

// Replaces `target` with `content` so that a reader sees either the old file or the new one, never
// a mix. The temporary file takes the target's permissions (mkstemp alone would make it 0600).
inline AtomicWriteResult write_file_atomically(const std::filesystem::path& target, std::string_view content,
                                               const AtomicWriteOptions& options = {}) {
    AtomicWriteResult result;
    const std::filesystem::path folder = target.parent_path();
    std::string temp = (folder / (detail::temp_prefix(target) + "XXXXXX")).string();
    const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
    if (fd < 0) {
        result.error = detail::errno_text("cannot create a temporary file in", folder.empty() ? "." : folder, errno);
        return result;
    }
    struct stat existing {};
    const mode_t mode = ::stat(target.c_str(), &existing) == 0 ? (existing.st_mode & 07777) : options.new_file_mode;
    ::fchmod(fd, mode);
    bool ok = detail::write_all(fd, content);
    int err = errno;
    if (ok && options.durable && ::fsync(fd) != 0) {
        ok = false;
        err = errno;
    }
    if (::close(fd) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        ::unlink(temp.c_str());
        // Named by the target: the temporary name changes on every attempt and means nothing to a user.
        result.error = detail::errno_text("cannot write", target, err);
        return result;
    }
    if (::rename(temp.c_str(), target.c_str()) != 0) {
        err = errno;
        ::unlink(temp.c_str());
        const std::string why = detail::errno_text("cannot rename over", target, err);
        if (err == EBUSY || err == EXDEV) return detail::write_in_place(target, content, why);
        result.error = why;
        return result;
    }
    if (options.durable) detail::fsync_folder(folder);
    result.ok = true;
    return result;
}

// Removes temporary files that a killed writer of `target` left behind.
inline void remove_stale_temp_files(const std::filesystem::path& target) noexcept {
    std::error_code ec;
    const auto folder = target.parent_path().empty() ? std::filesystem::path(".") : target.parent_path();
    const std::string prefix = detail::temp_prefix(target);
    for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->path().filename().string().rfind(prefix, 0) == 0) std::filesystem::remove(it->path(), ec);
    }
}

struct StatusWriterOptions {
    std::filesystem::path path;
    std::chrono::milliseconds min_interval{100};  // at most 10 writes a second
    std::chrono::milliseconds heartbeat{2000};    // at least one write every 2 s while the heartbeat is on
    std::chrono::milliseconds tick{250};          // how often `on_tick` runs
};

struct StatusWriterStats {
    std::uint64_t writes = 0;
    std::uint64_t failures = 0;
    std::uint64_t fallbacks = 0;
    std::string last_error;
};

class StatusWriter {
public:
    using Render = std::function<std::string()>;
    using Hook = std::function<void()>;
    using ErrorHook = std::function<void(const AtomicWriteResult&)>;

    // `render` produces the document to write; `on_tick` runs on the writer thread every
    // `options.tick` (the tracker looks for stop requests there); `on_write_error` hears of failures
    // and fallbacks, and of the first good write after a failure (`ok`, no `error`); after the first
    // failure and after that good write the document is rendered and written once more, so what the
    // hook changed gets out. Creates the target's folder; throws std::filesystem::filesystem_error if
    // it cannot.
    StatusWriter(StatusWriterOptions options, Render render, Hook on_tick = {}, ErrorHook on_write_error = {})
        : options_(std::move(options)),
          render_(std::move(render)),
          on_tick_(std::move(on_tick)),
          on_write_error_(std::move(on_write_error)) {
        const auto folder = options_.path.parent_path();
        if (!folder.empty()) std::filesystem::create_directories(folder);
        remove_stale_temp_files(options_.path);
        thread_ = std::thread([this] { run(); });
    }

    StatusWriter(const StatusWriter&) = delete;
    StatusWriter& operator=(const StatusWriter&) = delete;

    ~StatusWriter() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_one();
        thread_.join();
        flush();
    }

    // Something changed: write soon. Only the first call after a write takes the lock. A plain load
    // first, because this runs for every logged line and an exchange would make each of them own
    // the cache line; seeing `true` is safe: the write that clears it renders after this change.
    void notify() noexcept {
        if (dirty_.load(std::memory_order_acquire)) return;
        if (!dirty_.exchange(true, std::memory_order_acq_rel)) {
            std::lock_guard<std::mutex> lock(mutex_);
            wake_.notify_one();
        }
    }

    void set_heartbeat(bool on) noexcept {
        heartbeat_on_.store(on, std::memory_order_release);
        std::lock_guard<std::mutex> lock(mutex_);
        wake_.notify_one();
    }

    // Writes now, on the calling thread (final states must not wait for the next interval).
    void flush() { write_once(); }

    StatusWriterStats stats() const {
        std::lock_guard<std::mutex> lock(write_mutex_);
        return stats_;
    }

    const std::filesystem::path& path() const noexcept { return options_.path; }

private:
    using Clock = std::chrono::steady_clock;

    void run() {
        auto next_tick = Clock::now() + options_.tick;
        std::unique_lock<std::mutex> lock(mutex_);
        while (!stopping_) {
            const auto now = Clock::now();
            const auto last = last_write_.load(std::memory_order_acquire);
            const bool dirty_due = dirty_.load(std::memory_order_acquire) && now >= last + options_.min_interval;
            const bool heartbeat_due = heartbeat_on_.load(std::memory_order_acquire) && now >= last + options_.heartbeat;
            const bool tick_due = now >= next_tick;
            if (dirty_due || heartbeat_due || tick_due) {
                lock.unlock();
                if (tick_due) {
                    next_tick = now + options_.tick;
                    if (on_tick_) on_tick_();
                }
                if (dirty_due || heartbeat_due) write_once();
                lock.lock();
                continue;
            }
            wake_.wait_until(lock, next_wake(now, last, next_tick));
        }
    }

    Clock::time_point next_wake(Clock::time_point now, Clock::time_point last, Clock::time_point next_tick) const {
        auto wake = next_tick;
        if (dirty_.load(std::memory_order_acquire)) wake = std::min(wake, last + options_.min_interval);
        if (heartbeat_on_.load(std::memory_order_acquire)) wake = std::min(wake, last + options_.heartbeat);
        return std::max(wake, now);
    }

    void write_once() {
        std::lock_guard<std::mutex> lock(write_mutex_);
        dirty_.store(false, std::memory_order_release);
        const std::string text = render_();
        const AtomicWriteResult result = write_file_atomically(options_.path, text);
        last_write_.store(Clock::now(), std::memory_order_release);
        if (result.ok) ++stats_.writes;
        else ++stats_.failures;
        if (result.fell_back_in_place) ++stats_.fallbacks;
        if (!result.error.empty()) stats_.last_error = result.error;
        const bool turned = failing_ == result.ok;  // the first failure, or the first good write after failures
        failing_ = !result.ok;
        if ((!result.error.empty() || turned) && on_write_error_) on_write_error_(result);
        // What the owner changed in the hook (a notice of the failure, or its end) is written next.
        if (turned) dirty_.store(true, std::memory_order_release);
    }

    StatusWriterOptions options_;
    Render render_;
    Hook on_tick_;
    ErrorHook on_write_error_;

    std::atomic<bool> dirty_{true};
    std::atomic<bool> heartbeat_on_{false};
    std::atomic<Clock::time_point> last_write_{Clock::time_point{}};

    std::mutex mutex_;  // guards stopping_ and the wait
    std::condition_variable wake_;
    bool stopping_ = false;

    mutable std::mutex write_mutex_;  // one write at a time; guards stats_ and failing_
    StatusWriterStats stats_;
    bool failing_ = false;  // the last write failed

    std::thread thread_;  // last: starts after every member above exists
};

}  // namespace azops
// #include <azops/status_writer.hpp> — end
// #include <azops/process.hpp> — begin
// azops/process.hpp — running a child command in its own process group, streaming its output
// lines, and stopping it.
//
// Owns: spawning (posix_spawnp) with stdout and stderr merged into one pipe, so neither can fill and
// deadlock; the child's process group (so a stop reaches its whole tree); SIGPIPE and the other
// signals reset to their defaults and every file descriptor above 2 closed in the child (a server
// in this process ignores SIGPIPE and has sockets open); reading until the child and its pipe are
// done; stopping the group with SIGTERM, then SIGKILL after a grace period; reaping every child.
// A descendant that leaves the group (setsid, a daemon) is out of its reach: `run` stops waiting
// for the output it still holds after `drain_after_exit`, and leaves it running. A program that
// must stop those too becomes their subreaper (PR_SET_CHILD_SUBREAPER), as `azops run` does.
// Thread-safety: a ChildProcess is used by one thread; `request_stop()` may be called from any
// thread and from a signal handler (it only writes one byte to a pipe).
// Errors: `ChildProcess::spawn` throws SpawnError with a clear message (command not found, not
// executable, ...); nothing else throws.

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

// POSIX leaves declaring it to the program; glibc's <unistd.h> happens to declare it as well.
extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace azops {

class SpawnError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// How a child ended: its exit code, or the signal that killed it.
struct ExitStatus {
    int code = 0;                 // exit code; 128 + signal when killed by a signal (as shells report it)
    std::optional<int> signal;    // the signal, when killed by one
    bool stop_requested = false;  // a stop was requested before it ended

    std::string describe() const {
        if (signal) {
            const char* name = ::sigdescr_np(*signal);  // strsignal without its shared buffer
            return "killed by signal " + std::to_string(*signal) +
                   (name != nullptr ? std::string(" (") + name + ")" : "");
        }
        return "exited with code " + std::to_string(code);
    }
};

struct StopPolicy {
    std::chrono::milliseconds grace{10000};        // SIGTERM → SIGKILL
    std::chrono::milliseconds drain_after_exit{2000};  // leftover group members holding the pipe
};

namespace detail {

inline ExitStatus exit_status_from_wait(int wstatus) {
    ExitStatus s;
    if (WIFSIGNALED(wstatus)) {
        s.signal = WTERMSIG(wstatus);
        s.code = 128 + *s.signal;
    } else if (WIFEXITED(wstatus)) {
        s.code = WEXITSTATUS(wstatus);
    }
    return s;
}

inline void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// argv as the NULL-terminated array exec wants; the strings must outlive it.
inline std::vector<char*> c_argv(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    return args;
}

// RAII for the spawn attribute objects, so every exit path releases them.
struct SpawnSetup {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    SpawnSetup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
    }

    // The child starts with the signals a program embedding azops may ignore or block (a server
    // ignores SIGPIPE) back at their defaults, and nothing blocked. Returns the flags to set.
    short reset_signals() {
        sigset_t defaults;
        sigemptyset(&defaults);
        for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGTTOU, SIGTTIN}) sigaddset(&defaults, sig);
        sigset_t empty;
        sigemptyset(&empty);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setsigmask(&attr, &empty);
        return POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;
};

}  // namespace detail

class ChildProcess {
public:
    // Starts `argv` (argv[0] looked up on PATH) in a new process group, its stdin from /dev/null
    // unless `inherit_stdin`, stdout and stderr into one pipe that `run` reads.
    static ChildProcess spawn(const std::vector<std::string>& argv, bool inherit_stdin = false) {
        if (argv.empty() || argv.front().empty()) throw SpawnError("no command given");
        ChildProcess child;
        std::array<int, 2> out{};
        if (::pipe2(out.data(), O_CLOEXEC) != 0) {
            throw SpawnError(std::string("cannot create a pipe: ") + std::generic_category().message(errno));
        }
        child.read_fd_ = out[0];
        widen_pipe(out[0]);
        if (::pipe2(child.wake_.data(), O_CLOEXEC | O_NONBLOCK) != 0) {
            const int err = errno;
            ::close(out[1]);
            throw SpawnError(std::string("cannot create a pipe: ") + std::generic_category().message(err));
        }
        const int err = start(argv, out[1], inherit_stdin, child.pid_);
        ::close(out[1]);
        if (err != 0) throw SpawnError(spawn_error_message(argv.front(), err));
        return child;
    }

    ChildProcess(ChildProcess&& other) noexcept { *this = std::move(other); }
    ChildProcess& operator=(ChildProcess&& other) noexcept {
        if (this != &other) {
            release();
            pid_ = other.pid_;
            read_fd_ = other.read_fd_;
            wake_[0] = other.wake_[0];
            wake_[1] = other.wake_[1];
            other.pid_ = -1;
            other.read_fd_ = other.wake_[0] = other.wake_[1] = -1;
        }
        return *this;
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // Whatever happens, no child is left running or unreaped.
    ~ChildProcess() { release(); }

    pid_t pid() const noexcept { return pid_; }

    // Asks `run` to stop the child's group. Async-signal-safe.
    void request_stop() const noexcept {
        const char byte = 1;
        [[maybe_unused]] const ssize_t n = ::write(wake_[1], &byte, 1);
    }

    // Reads the merged output, calling `on_chunk(std::string_view bytes)` as it arrives, until the
    // child has exited and its output is drained; stops the group when `request_stop` was called.
    template <typename OnChunk>
    ExitStatus run(OnChunk&& on_chunk, const StopPolicy& policy = {}) {
        using Clock = std::chrono::steady_clock;
        constexpr auto never = Clock::time_point::max();
        std::optional<ExitStatus> exit;
        Clock::time_point kill_at = never;
        Clock::time_point drain_deadline = never;
        bool stop_requested = false;
        std::vector<char> buffer(read_size);
        while (true) {
            std::array<pollfd, 2> fds{{{read_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}}};
            const nfds_t count = read_fd_ >= 0 ? 2 : 1;
            pollfd* set = read_fd_ >= 0 ? fds.data() : fds.data() + 1;
            const int ready = ::poll(set, count, 100);
            if (ready < 0 && errno != EINTR) break;
            if (read_fd_ >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                const ssize_t n = ::read(read_fd_, buffer.data(), buffer.size());
                if (n > 0) on_chunk(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
                else if (n == 0 || errno != EINTR) detail::close_fd(read_fd_);
            }
            if ((fds[1].revents & POLLIN) != 0 && !stop_requested) {
                drain_wake_pipe();
                stop_requested = true;
                signal_group(SIGTERM);
                kill_at = Clock::now() + policy.grace;
            }
            if (Clock::now() >= kill_at) {
                signal_group(SIGKILL);
                kill_at = never;
            }
            if (!exit) exit = try_reap();
            if (exit && read_fd_ < 0) break;
            if (exit && drain_deadline == never) drain_deadline = Clock::now() + policy.drain_after_exit;
            if (Clock::now() >= drain_deadline) {
                // The leader is gone but members of its group still hold the pipe: stop them too.
                signal_group(SIGKILL);
                detail::close_fd(read_fd_);
                break;
            }
        }
        if (!exit) exit = reap_blocking();
        exit->stop_requested = stop_requested;
        pid_ = -1;
        return *exit;
    }

private:
    ChildProcess() = default;

    static int start(const std::vector<std::string>& argv, int out_fd, bool inherit_stdin, pid_t& pid) {
        detail::SpawnSetup setup;
        if (!inherit_stdin) posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&setup.actions, out_fd, 1);
        posix_spawn_file_actions_adddup2(&setup.actions, out_fd, 2);
        posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);
        const short flags = setup.reset_signals();
        posix_spawnattr_setpgroup(&setup.attr, 0);
        posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETPGROUP | flags);
        std::vector<char*> args = detail::c_argv(argv);
        return posix_spawnp(&pid, args[0], &setup.actions, &setup.attr, args.data(), environ);
    }

    // A fast writer fills the default 64 KiB pipe in microseconds and then waits for each of our
    // reads: with room for 1 MiB it runs ahead instead, a reader held up for a moment (a busy
    // machine, a status write) costs it nothing, and one read takes up to `read_size` at once.
    // Best effort: the default size still works.
    static void widen_pipe([[maybe_unused]] int fd) noexcept {
#if defined(F_SETPIPE_SZ)
        ::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
#endif
    }

    static std::string spawn_error_message(const std::string& command, int err) {
        if (err == ENOENT) return "command not found: " + command;
        if (err == EACCES) return "permission denied (not executable?): " + command;
        return "cannot start " + command + ": " + std::generic_category().message(err);
    }

    void signal_group(int sig) const noexcept {
        // The group outlives its leader; signal it before the leader is reaped so the id stays ours.
        if (pid_ > 0) ::kill(-pid_, sig);
    }

    void drain_wake_pipe() const noexcept {
        std::array<char, 64> sink{};
        while (::read(wake_[0], sink.data(), sink.size()) > 0) {
        }
    }

    // Not const, though it changes no member: a reaped child is gone, and its id may soon name another.
    std::optional<ExitStatus> try_reap() noexcept {  // NOLINT(readability-make-member-function-const)
        int wstatus = 0;
        const pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
        if (r == pid_) return detail::exit_status_from_wait(wstatus);
        return std::nullopt;
    }

    ExitStatus reap_blocking() noexcept {  // NOLINT(readability-make-member-function-const): as try_reap
        int wstatus = 0;
        while (::waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
        }
        return detail::exit_status_from_wait(wstatus);
    }

    void release() noexcept {
        if (pid_ > 0) {
            signal_group(SIGKILL);
            reap_blocking();
            pid_ = -1;
        }
        detail::close_fd(read_fd_);
        detail::close_fd(wake_[0]);
        detail::close_fd(wake_[1]);
    }

    static constexpr std::size_t read_size = std::size_t{256} * 1024;  // a quarter of the widened pipe: 4x fewer wakeups

    pid_t pid_ = -1;
    int read_fd_ = -1;
    std::array<int, 2> wake_{-1, -1};
};

}  // namespace azops
// #include <azops/process.hpp> — end
// #include <azops/docker_parser.hpp> — begin
// azops/docker_parser.hpp — what a `docker build` is doing, read from its output.
//
// Owns: DockerStepParser, which reads the sanitised output lines of one `docker build` — the legacy
// builder (`Step X/Y : …`), BuildKit `--progress=plain` (`#N [k/n] …`) and BuildKit `--progress=tty`
// once its redraws have been sanitised into lines (`[+] Building …`, ` => [k/n] …`) — and keeps step X
// of Y, the current instruction and phase, per-step timings, cached steps, the outcome and the
// builder's error text, plus the events that led there. docker_phase_for_instruction() names the
// phase an instruction belongs to.
// Thread-safety: DockerStepParser is a plain value: one thread feeds it, or its owner guards it.
// Errors: feed() never throws on any input (only std::bad_alloc can escape); lines it does not
// recognise are ignored; everything it stores is bounded, whatever it is fed. One parser follows one
// build: once a build has ended, a second build in the same stream is not tracked.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

// #include <azops/detail/text.hpp> — begin
// azops/detail/text.hpp — the small text tests the parsers, the cost model, the az runner and the
// server share.
//
// Owns: prefix, suffix and substring tests, digit tests, trimming (blanks, or all ASCII white space)
// and ASCII lower-casing. Byte-wise and locale-free on purpose: what they read is machine output, VM
// size names and HTTP headers, never prose in the user's language.
// Thread-safety: pure functions. Errors: none.

#include <string>
#include <string_view>

namespace azops::detail::text {

inline bool starts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

inline bool ends_with(std::string_view s, std::string_view suffix) noexcept {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline bool contains(std::string_view s, std::string_view part) noexcept {
    return s.find(part) != std::string_view::npos;
}

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

inline bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }

// Without trailing spaces and tabs.
inline std::string_view trim_end_blanks(std::string_view s) noexcept {
    while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
    return s;
}

// Without leading and trailing spaces and tabs (what separates the fields of a log line).
inline std::string_view trim_blanks(std::string_view s) noexcept {
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    return trim_end_blanks(s);
}

// Without leading and trailing ASCII white space, line ends included (a value read from a file or
// from a command's whole output).
inline std::string_view trim_space(std::string_view s) noexcept {
    constexpr std::string_view space = " \t\n\v\f\r";
    const auto first = s.find_first_not_of(space);
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(space) - first + 1);
}

inline char lower_ascii(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower_ascii(c);
    return out;
}

}  // namespace azops::detail::text
// #include <azops/detail/text.hpp> — end

namespace azops {

enum class BuildOutcome { running, succeeded, failed };

// Which of docker's output formats the parser has recognised.
enum class DockerLogFormat { unknown, legacy, buildkit_plain, buildkit_tty };

// Where step times come from: the clock passed to feed() (and the log's own durations where it gives
// them), or the log alone — for a captured log whose lines all arrive at once.
enum class StepTiming { clock, log_only };

struct DockerStepEvent {  // one thing that happened, in order
    enum class Kind {
        step_started,
        step_cached,
        step_finished,
        step_failed,
        pulling,
        exporting,
        build_succeeded,
        build_failed
    };
    Kind kind = Kind::step_started;
    int step = 0;   // the step's position in the whole build (1-based); for build events, step()
    int total = 0;  // total_steps() when the event happened
    std::string instruction;
    std::optional<double> seconds;  // the step's duration, on step_finished and step_failed when known
    std::string message;            // image reference, tag, or error text
};

struct DockerStep {
    int index = 0;  // position in the whole build: stages are numbered one after another, in the order they appear
    std::string instruction;
    bool cached = false;
    std::optional<double> started_at, finished_at, duration;  // cached steps have no duration: they did no work
    bool failed = false;
    bool done = false;            // finished successfully or taken from the cache
    bool cancelled = false;       // stopped because another step failed
    bool output_clipped = false;  // BuildKit stopped printing its output: silence here is not a stall
    std::string stage;    // BuildKit stage label (`builder`, `stage-0`, `linux/amd64`); empty for one unnamed stage
    int stage_step = 0;   // k of `[k/n]`, or X of `Step X/Y`
    int stage_total = 0;  // n of `[k/n]`, or Y of `Step X/Y`
};

inline std::string_view to_string(DockerStepEvent::Kind kind) noexcept {
    switch (kind) {
        case DockerStepEvent::Kind::step_started: return "step_started";
        case DockerStepEvent::Kind::step_cached: return "step_cached";
        case DockerStepEvent::Kind::step_finished: return "step_finished";
        case DockerStepEvent::Kind::step_failed: return "step_failed";
        case DockerStepEvent::Kind::pulling: return "pulling";
        case DockerStepEvent::Kind::exporting: return "exporting";
        case DockerStepEvent::Kind::build_succeeded: return "build_succeeded";
        case DockerStepEvent::Kind::build_failed: return "build_failed";
    }
    return "unknown";
}

inline std::string_view to_string(BuildOutcome outcome) noexcept {
    switch (outcome) {
        case BuildOutcome::running: return "running";
        case BuildOutcome::succeeded: return "succeeded";
        case BuildOutcome::failed: return "failed";
    }
    return "unknown";
}

inline std::string_view to_string(DockerLogFormat format) noexcept {
    switch (format) {
        case DockerLogFormat::unknown: return "unknown";
        case DockerLogFormat::legacy: return "legacy";
        case DockerLogFormat::buildkit_plain: return "buildkit_plain";
        case DockerLogFormat::buildkit_tty: return "buildkit_tty";
    }
    return "unknown";
}

namespace detail::docker {

// Bounds on what one parser keeps, so that no input can make it grow without limit. Real builds stay
// far below them (the WAA image has 30 instructions and about 30 BuildKit vertices).
inline constexpr std::size_t max_text = 4096;
inline constexpr std::size_t max_steps = 4096;
inline constexpr std::size_t max_stages = 256;
inline constexpr std::size_t max_vertices = 16384;
inline constexpr std::size_t max_pending_events = 1024;
inline constexpr std::size_t max_pull_names = 64;

using text::ends_with;
using text::is_digit;
using text::starts_with;
using text::trim_blanks;

// Takes 1–7 decimal digits from the front of `s`; more digits than that is no counter docker prints.
inline std::optional<int> take_int(std::string_view& s) noexcept {
    std::size_t i = 0;
    int value = 0;
    while (i < s.size() && i < 8 && is_digit(s[i])) {
        value = value * 10 + (s[i] - '0');
        ++i;
    }
    if (i == 0 || i == 8) return std::nullopt;
    s.remove_prefix(i);
    return value;
}

// `12`, `12.3`, `0.057`: the only number forms docker prints for seconds. Locale-independent.
inline std::optional<double> parse_decimal(std::string_view s) noexcept {
    std::string_view rest = s;
    const auto whole = take_int(rest);
    if (!whole) return std::nullopt;
    double value = *whole;
    if (rest.empty()) return value;
    if (rest.front() != '.' || rest.size() == 1 || rest.size() > 10) return std::nullopt;
    double scale = 1.0;
    long long fraction = 0;
    for (std::size_t i = 1; i < rest.size(); ++i) {
        if (!is_digit(rest[i])) return std::nullopt;
        fraction = fraction * 10 + (rest[i] - '0');
        scale *= 10.0;
    }
    return value + static_cast<double>(fraction) / scale;
}

// `12.3s` → 12.3
inline std::optional<double> parse_seconds(std::string_view s) noexcept {
    if (s.empty() || s.back() != 's') return std::nullopt;
    return parse_decimal(s.substr(0, s.size() - 1));
}

// A copy of at most max_text bytes, never splitting a UTF-8 sequence.
inline std::string bounded_text(std::string_view s) {
    if (s.size() <= max_text) return std::string(s);
    std::size_t n = max_text;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return std::string(s.substr(0, n));
}

inline std::uint64_t text_hash(std::string_view s) noexcept {
    std::uint64_t h = 14695981039346656037ULL;  // FNV-1a
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return h;
}

// The step counter BuildKit puts before an instruction: `[k/n]`, `[ k/n]` (k padded to the width of
// n), `[stage k/n]`, `[linux/amd64 stage k/n]`.
struct StepLabel {
    std::string_view stage;
    int index = 0;
    int total = 0;
    std::string_view instruction;
};

inline std::optional<StepLabel> parse_step_label(std::string_view s) noexcept {
    if (s.empty() || s.front() != '[') return std::nullopt;
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const std::string_view inside = s.substr(1, close - 1);
    std::size_t p = inside.size();
    while (p > 0 && is_digit(inside[p - 1])) --p;
    const std::size_t total_digits = inside.size() - p;
    if (total_digits == 0 || total_digits > 4 || p == 0 || inside[p - 1] != '/') return std::nullopt;
    const std::size_t index_end = p - 1;
    std::size_t q = index_end;
    while (q > 0 && is_digit(inside[q - 1])) --q;
    if (q == index_end || index_end - q > 4) return std::nullopt;
    const std::string_view before = inside.substr(0, q);
    if (!before.empty() && before.back() != ' ') return std::nullopt;
    std::string_view index_text = inside.substr(q, index_end - q);
    std::string_view total_text = inside.substr(p);
    StepLabel label;
    label.index = *take_int(index_text);
    label.total = *take_int(total_text);
    if (label.index < 1 || label.index > label.total) return std::nullopt;
    label.stage = trim_blanks(before);
    label.instruction = trim_blanks(s.substr(close + 1));
    return label;
}

// `[internal] …`, `[auth] …`, `[linux/amd64 internal] …`: BuildKit's own work, not a step.
inline bool is_internal_label(std::string_view s) noexcept {
    const std::size_t close = s.find(']');
    if (s.empty() || s.front() != '[' || close == std::string_view::npos) return false;
    const std::string_view inside = s.substr(1, close - 1);
    return inside == "internal" || inside == "auth" || ends_with(inside, " internal") || ends_with(inside, " auth");
}

// Splits ` … RUN make   3.2s` (a tty line) into its text and its trailing seconds.
inline std::pair<std::string_view, std::optional<double>> split_trailing_seconds(std::string_view s) noexcept {
    s = trim_blanks(s);
    const std::size_t space = s.find_last_of(' ');
    if (space == std::string_view::npos) return {s, std::nullopt};
    const auto seconds = parse_seconds(s.substr(space + 1));
    if (!seconds) return {s, std::nullopt};
    return {trim_blanks(s.substr(0, space)), seconds};
}

inline bool is_hex_id(std::string_view s) noexcept {
    if (starts_with(s, "sha256:")) s.remove_prefix(7);
    if (s.size() < 12 || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); });
}

// The verbs that make a package manager fetch or install something, space-separated and space-framed;
// empty when `name` is no package manager.
inline std::string_view install_verbs(std::string_view name) noexcept {
    struct Entry {
        std::string_view manager;
        std::string_view verbs;
    };
    static constexpr std::array<Entry, 28> table{{
        {"apt-get", " install update upgrade dist-upgrade build-dep "},
        {"apt", " install update upgrade full-upgrade "},
        {"aptitude", " install update "},
        {"apk", " add update upgrade "},
        {"yum", " install update upgrade groupinstall "},
        {"dnf", " install update upgrade groupinstall "},
        {"microdnf", " install update "},
        {"tdnf", " install update "},
        {"zypper", " install in refresh ref update "},
        {"pip", " install download "},
        {"pip3", " install download "},
        {"pipx", " install "},
        {"pipenv", " install sync "},
        {"poetry", " install add "},
        {"uv", " sync add "},
        {"conda", " install create update env "},
        {"mamba", " install create update env "},
        {"micromamba", " install create "},
        {"npm", " install i ci add "},
        {"yarn", " install add "},
        {"pnpm", " install i add "},
        {"gem", " install "},
        {"bundle", " install "},
        {"composer", " install require update "},
        {"cargo", " install fetch "},
        {"go", " get install mod "},
        {"dotnet", " restore "},
        {"playwright", " install install-deps "},
    }};
    for (const auto& entry : table) {
        if (entry.manager == name) return entry.verbs;
    }
    return {};
}

inline bool is_install_verb(std::string_view manager, std::string_view verb) noexcept {
    const std::string_view verbs = install_verbs(manager);
    const std::size_t at = verbs.find(verb);
    return at != std::string_view::npos && verbs[at - 1] == ' ' && verbs[at + verb.size()] == ' ';
}

// Words that run the command after them (`sudo apt-get …`, `env DEBIAN_FRONTEND=noninteractive apt-get …`).
inline bool is_command_wrapper(std::string_view word) noexcept {
    return word == "sudo" || word == "env" || word == "exec" || word == "time" || word == "nice" || word == "nohup" ||
           word == "command" || word == "xargs";
}

inline bool is_python(std::string_view word) noexcept {
    return starts_with(word, "python") &&
           std::all_of(word.begin() + 6, word.end(), [](char c) { return is_digit(c) || c == '.'; });
}

// True when a RUN command line installs dependencies: a package manager in command position, followed,
// after its options, by an install-like verb (`apt-get -y install`, `python3 -m pip install`,
// `cd /web && npm ci`); not when its name is only an argument (`echo pip install`).
inline bool runs_package_manager(std::string_view command) noexcept {
    const auto is_separator = [](char c) { return c == ';' || c == '&' || c == '|' || c == '(' || c == ')'; };
    bool command_position = true;
    bool after_python = false;  // `python -m` runs the module named next as a command
    std::string_view manager;
    std::size_t i = 0;
    while (i < command.size()) {
        const char c = command[i];
        if (c == ' ' || c == '\t' || c == '\\') {
            ++i;
            continue;
        }
        if (is_separator(c)) {
            command_position = true;
            after_python = false;
            manager = {};
            ++i;
            continue;
        }
        const std::size_t start = i;
        while (i < command.size() && command[i] != ' ' && command[i] != '\t' && !is_separator(command[i])) ++i;
        std::string_view word = command.substr(start, i - start);
        if (!manager.empty()) {
            if (word.front() == '-') continue;
            if (is_install_verb(manager, word)) return true;
            if (!install_verbs(word).empty()) {  // `uv pip install`: a manager driving another
                manager = word;
                continue;
            }
            manager = {};
            command_position = false;
            continue;
        }
        if (!command_position) continue;
        if (word.front() == '-') {
            if (after_python && word == "-m") continue;
            if (after_python) command_position = false;
            continue;
        }
        if (word.find('=') != std::string_view::npos || is_command_wrapper(word)) continue;
        const std::size_t slash = word.rfind('/');
        if (slash != std::string_view::npos) word.remove_prefix(slash + 1);
        if (is_python(word)) {
            after_python = true;
            continue;
        }
        after_python = false;
        command_position = false;
        if (!install_verbs(word).empty()) manager = word;
    }
    return false;
}

inline bool equals_ignoring_case(std::string_view a, std::string_view upper) noexcept {
    if (a.size() != upper.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const char c = (a[i] >= 'a' && a[i] <= 'z') ? static_cast<char>(a[i] - 'a' + 'A') : a[i];
        if (c != upper[i]) return false;
    }
    return true;
}

}  // namespace detail::docker

// The phase a Dockerfile instruction puts the build in: `FROM` pulls the base image, `COPY`/`ADD`
// copy files, a `RUN` that calls a package manager installs dependencies, another `RUN` runs a step,
// and metadata instructions (`ENV`, `WORKDIR`, `EXPOSE`, …) configure the image.
inline std::string docker_phase_for_instruction(std::string_view instruction) {
    std::string_view rest = detail::docker::trim_blanks(instruction);
    const auto next_word = [&rest] {
        const std::size_t end = std::min(rest.find(' '), rest.size());
        const std::string_view word = rest.substr(0, end);
        rest = detail::docker::trim_blanks(rest.substr(end));
        return word;
    };
    std::string_view keyword = next_word();
    if (detail::docker::equals_ignoring_case(keyword, "ONBUILD")) keyword = next_word();
    if (keyword.empty()) return "";
    if (detail::docker::equals_ignoring_case(keyword, "FROM")) return "pulling_base_image";
    if (detail::docker::equals_ignoring_case(keyword, "COPY") || detail::docker::equals_ignoring_case(keyword, "ADD"))
        return "copying_files";
    if (detail::docker::equals_ignoring_case(keyword, "RUN"))
        return detail::docker::runs_package_manager(rest) ? "installing_dependencies" : "running_step";
    return "configuring_image";
}

class DockerStepParser {
public:
    explicit DockerStepParser(StepTiming timing = StepTiming::clock) : timing_(timing) {}

    // Feeds one sanitised line; `now_seconds` is a monotonic time in seconds used to time steps when
    // the log itself gives no durations. Returns true when the parser's visible state changed.
    bool feed(std::string_view line, double now_seconds = 0.0) {
        if (line.empty()) return false;
        changed_ = false;
        now_ = now_seconds;
        switch (line.front()) {
            case '#': on_hash_line(line); break;
            case ' ': on_indented_line(line); break;
            case '[': on_bracket_line(line); break;
            case '-': on_dash_line(line); break;
            default: on_other_line(line); break;
        }
        return changed_;
    }

    // Events since the last call, oldest first. At most detail::docker::max_pending_events (1024) wait
    // here: when nobody takes them, the oldest are dropped (and counted in dropped_events()).
    std::vector<DockerStepEvent> take_events() {
        std::vector<DockerStepEvent> out(std::make_move_iterator(events_.begin()),
                                         std::make_move_iterator(events_.end()));
        events_.clear();
        return out;
    }
    std::size_t dropped_events() const noexcept { return dropped_events_; }

    bool is_docker_build() const noexcept { return format_ != DockerLogFormat::unknown || seen_docker_; }
    DockerLogFormat format() const noexcept { return format_; }

    // Step X of Y. X adds up, over the stages, the highest step started or done in each (steps of one
    // stage run in order), so it never decreases; Y adds up the stages' totals, and grows when a
    // stage BuildKit had not yet printed appears.
    int step() const noexcept { return step_; }
    int total_steps() const noexcept { return total_; }

    // Done and cached steps over all steps, 0..1; it never decreases (not even when a newly seen stage
    // raises the total), and is 1 once the build succeeded.
    double progress_fraction() const noexcept { return progress_; }

    // The instruction of the step most recently started that still runs; when none runs, of the last
    // one that ran. The reference is valid until the next feed().
    const std::string& instruction() const noexcept {
        return current_ ? steps_[*current_].instruction : no_instruction_;
    }

    // pulling_base_image, loading_build_context, copying_files, installing_dependencies, running_step,
    // configuring_image, exporting_image, build_succeeded, build_failed; `starting` before anything
    // happened, empty when the output does not look like a docker build.
    std::string phase() const {
        if (outcome_ == BuildOutcome::failed) return "build_failed";
        if (outcome_ == BuildOutcome::succeeded) return "build_succeeded";
        if (exporting_active_) return "exporting_image";
        if (legacy_pulling_) return "pulling_base_image";
        if (!running_.empty()) return docker_phase_for_instruction(steps_[running_.back()].instruction);
        if (active_pulls_ > 0) return "pulling_base_image";
        if (current_) return docker_phase_for_instruction(steps_[*current_].instruction);
        if (loading_context_) return "loading_build_context";
        return is_docker_build() ? "starting" : "";
    }

    // The outcome as the log shows it so far. A failure is final; a success can still turn into a
    // failure when the builder reports an error after it (a push that fails after `naming to`).
    BuildOutcome outcome() const noexcept { return outcome_; }
    const std::string& error() const noexcept { return error_; }  // the builder's own error text

    // Every step seen, in the order the log first showed it.
    const std::vector<DockerStep>& steps() const noexcept { return steps_; }

private:
    using Kind = DockerStepEvent::Kind;
    static constexpr std::size_t no_step = static_cast<std::size_t>(-1);

    struct Stage {
        std::string label;
        int total = 0;
        int offset = 0;  // steps of the stages that appeared before this one
        int highest_seen = 0;
        int highest_done = 0;
    };

    enum class Role : unsigned char { other, step, pull, exporting, internal };
    enum class VertexEnd { done, cached, failed, cancelled };

    struct Vertex {
        Role role = Role::other;
        bool active = true;
        std::size_t step = no_step;
    };

    // ---- dispatch by first byte: the common line is classified by a few leading bytes ----

    void on_hash_line(std::string_view line) {
        if (format_ == DockerLogFormat::legacy) return;  // a `#` in legacy output is a RUN's own text
        std::string_view rest = line.substr(1);
        const auto id = detail::docker::take_int(rest);
        if (!id || rest.size() < 2 || rest.front() != ' ') return;
        rest.remove_prefix(1);
        if (detail::docker::is_digit(rest.front())) {  // `#24 41.07 Collecting gymnasium`: a step's output
            std::size_t i = 1;
            while (i < rest.size() && (detail::docker::is_digit(rest[i]) || rest[i] == '.')) ++i;
            if (i + 1 < rest.size() && rest[i] == ' ' && rest[i + 1] == '[') on_vertex_output(*id, rest.substr(i + 1));
            return;
        }
        if (rest.front() == '[' && detail::docker::starts_with(rest, clipped_marker)) {
            on_vertex_output(*id, rest);
            return;
        }
        on_vertex_line(*id, rest);
    }

    void on_indented_line(std::string_view line) {
        if (detail::docker::starts_with(line, " ---> ")) {
            if (format_ != DockerLogFormat::buildkit_plain && format_ != DockerLogFormat::buildkit_tty)
                on_legacy_arrow(line.substr(6));
            return;
        }
        if (format_ == DockerLogFormat::legacy) return;
        std::string_view body = detail::docker::trim_blanks(line);
        if (detail::docker::starts_with(body, "=> ")) {
            on_tty_vertex_line(body.substr(3));
        } else if (in_error_block_ && detail::docker::starts_with(body, "> [")) {
            on_error_block_header(body.substr(2));
        }
    }

    void on_bracket_line(std::string_view line) {
        if (format_ == DockerLogFormat::legacy || !detail::docker::starts_with(line, "[+] Building ")) return;
        if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::buildkit_tty);
        seen_docker_ = true;
        // In the final frame every step drawn without ERROR or CANCELED has ended.
        tty_finished_frame_ = line.find(" FINISHED") != std::string_view::npos;
    }

    void on_dash_line(std::string_view line) {
        // BuildKit frames the failed step's last output lines between two `------` lines.
        if (format_ != DockerLogFormat::legacy && line == "------") in_error_block_ = !in_error_block_;
    }

    void on_other_line(std::string_view line) {
        switch (line.front()) {
            case 'S':
                if (detail::docker::starts_with(line, "Step ")) return on_legacy_step(line.substr(5));
                if (detail::docker::starts_with(line, "Successfully built "))
                    return on_legacy_success(line.substr(19), true);
                if (detail::docker::starts_with(line, "Successfully tagged "))
                    return on_legacy_success(line.substr(20), false);
                if (detail::docker::starts_with(line, "Sending build context to Docker daemon")) {
                    if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::legacy);
                    if (format_ == DockerLogFormat::legacy) set_loading_context();
                    return;
                }
                if (detail::docker::starts_with(line, "Status: ")) return stop_legacy_pull();
                break;
            case 'R':
                if (detail::docker::starts_with(line, "Removing intermediate container ")) legacy_in_container_ = false;
                return;
            case 'D':
                if (detail::docker::starts_with(line, "DEPRECATED: The legacy builder is deprecated") &&
                    format_ == DockerLogFormat::unknown)
                    set_format(DockerLogFormat::legacy);
                return;
            case 'T':
                if (detail::docker::starts_with(line, "The command '") &&
                    line.find("' returned a non-zero code: ") != std::string_view::npos &&
                    format_ != DockerLogFormat::buildkit_plain && format_ != DockerLogFormat::buildkit_tty)
                    return on_legacy_failure(line);
                break;
            case 'E':
                if (detail::docker::starts_with(line, "ERROR: ")) return on_builder_error(line.substr(7));
                if (detail::docker::starts_with(line, "Error response from daemon: ") &&
                    format_ != DockerLogFormat::unknown && !legacy_in_container_)
                    return fail_build(line, true);
                break;
            case 'e':
                if (detail::docker::starts_with(line, "error: ")) return on_builder_error(line.substr(7));
                if (detail::docker::starts_with(line, "executor failed running ")) return on_builder_error(line);
                break;
            case 'f':
                if (detail::docker::starts_with(line, "failed to solve")) return on_builder_error(line);
                break;
            default: break;
        }
        if (format_ == DockerLogFormat::legacy && !legacy_in_container_) on_legacy_builder_message(line);
    }

    // ---- BuildKit --progress=plain ----

    static constexpr std::string_view clipped_marker = "[output clipped, log limit";

    void on_vertex_output(int id, std::string_view text) {
        if (!detail::docker::starts_with(text, clipped_marker)) return;
        const auto it = vertices_.find(id);
        if (it == vertices_.end() || it->second.step == no_step) return;
        DockerStep& step = steps_[it->second.step];
        if (!step.output_clipped) {
            step.output_clipped = true;
            changed_ = true;
        }
    }

    void on_vertex_line(int id, std::string_view rest) {
        const auto it = vertices_.find(id);
        if (it == vertices_.end()) {
            if (detail::docker::starts_with(rest, "DONE") || detail::docker::starts_with(rest, "CACHED") ||
                detail::docker::starts_with(rest, "ERROR") || detail::docker::starts_with(rest, "CANCELED") ||
                rest == "...")
                return;  // the end of a vertex whose header the log did not show
            return open_vertex(id, rest);
        }
        Vertex& vertex = it->second;
        if (detail::docker::starts_with(rest, "DONE")) {
            return end_vertex(vertex, VertexEnd::done,
                              detail::docker::parse_seconds(detail::docker::trim_blanks(rest.substr(4))), {});
        }
        if (rest == "CACHED") return end_vertex(vertex, VertexEnd::cached, std::nullopt, {});
        if (detail::docker::starts_with(rest, "ERROR")) {
            std::string_view message = rest.substr(5);
            if (detail::docker::starts_with(message, ":")) message.remove_prefix(1);
            return end_vertex(vertex, VertexEnd::failed, std::nullopt, detail::docker::trim_blanks(message));
        }
        if (detail::docker::starts_with(rest, "CANCELED"))
            return end_vertex(vertex, VertexEnd::cancelled, std::nullopt, {});
        // Status lines (`resolve …`, `sha256:… 1.2GB / 9.8GB`) and headers re-printed when the printer
        // comes back to a vertex change nothing, except the image name that ends a successful export.
        if (vertex.role == Role::exporting && detail::docker::starts_with(rest, "naming to ") &&
            detail::docker::ends_with(rest, " done")) {
            succeed_build(rest.substr(10, rest.size() - 10 - 5));
        }
    }

    void open_vertex(int id, std::string_view name) {
        if (vertices_.size() >= detail::docker::max_vertices) return;
        Vertex vertex;
        if (name.front() == '[') {
            if (const auto label = detail::docker::parse_step_label(name)) {
                if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::buildkit_plain);
                vertex.step = open_step(*label);
                if (vertex.step == no_step) return;
                vertex.role = Role::step;
            } else if (detail::docker::is_internal_label(name)) {
                if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::buildkit_plain);
                vertex.role = Role::internal;
                set_loading_context();
            }
        } else if (detail::docker::starts_with(name, "FROM ")) {
            vertex.role = Role::pull;  // an image COPY --from names: an implicit stage, not a step
            ++active_pulls_;
            emit(Kind::pulling, step_, std::string(name), std::nullopt, name.substr(5));
        } else if (detail::docker::starts_with(name, "exporting to ")) {
            vertex.role = Role::exporting;
            start_exporting(name);
        } else if (detail::docker::starts_with(name, "building with ")) {
            if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::buildkit_plain);
        }
        vertices_.emplace(id, vertex);
    }

    void end_vertex(Vertex& vertex, VertexEnd how, std::optional<double> seconds, std::string_view message) {
        if (!vertex.active) return;
        vertex.active = false;
        switch (vertex.role) {
            case Role::step:
                if (how == VertexEnd::failed) {
                    fail_step(vertex.step, message, seconds);
                } else if (how == VertexEnd::cancelled) {
                    cancel_step(vertex.step);
                } else {
                    finish_step(vertex.step, how == VertexEnd::cached, seconds);
                }
                break;
            case Role::pull:
                if (active_pulls_ > 0) {
                    --active_pulls_;
                    changed_ = true;
                }
                break;
            case Role::exporting:
                if (exporting_active_) {
                    exporting_active_ = false;
                    changed_ = true;
                }
                // Without a tag there is no `naming to` line: the export's end is the build's end.
                if (how == VertexEnd::done) succeed_build({});
                break;
            case Role::other:
            case Role::internal: break;
        }
    }

    void on_error_block_header(std::string_view text) {  // `[stage-0 16/32] RUN python3 -c "...":`
        auto label = detail::docker::parse_step_label(text);
        if (!label) return;
        if (detail::docker::ends_with(label->instruction, ":")) label->instruction.remove_suffix(1);
        const std::size_t pos = open_step(*label);
        if (pos != no_step) fail_step(pos, {}, std::nullopt);
    }

    // `ERROR: failed to solve: …` (buildx), `error: …`, `failed to solve …` and `executor failed
    // running …` (older CLIs): the builder's final word on a failed BuildKit build.
    void on_builder_error(std::string_view message) {
        if (format_ == DockerLogFormat::legacy || in_error_block_) return;
        const bool clearly_build = detail::docker::starts_with(message, "failed to solve") ||
                                   detail::docker::starts_with(message, "failed to build") ||
                                   detail::docker::starts_with(message, "executor failed running");
        if (format_ == DockerLogFormat::unknown && !clearly_build) return;
        fail_build(message, false);
    }

    // ---- BuildKit --progress=tty, after sanitising ----

    // `body`: the text after ` => `.
    void on_tty_vertex_line(std::string_view body) {
        if (detail::docker::starts_with(body, "=> ")) {  // a status or output line of the vertex above
            if (detail::docker::starts_with(body, "=> # [output clipped") && tty_last_step_ != no_step &&
                !steps_[tty_last_step_].output_clipped) {
                steps_[tty_last_step_].output_clipped = true;
                changed_ = true;
            }
            return;
        }
        auto [text, seconds] = detail::docker::split_trailing_seconds(body);
        std::optional<VertexEnd> verdict;  // none: drawn without one, running or (in the last frame) done
        if (detail::docker::starts_with(text, "CACHED ")) {
            verdict = VertexEnd::cached;
            text.remove_prefix(7);
        } else if (detail::docker::starts_with(text, "ERROR ")) {
            verdict = VertexEnd::failed;
            text.remove_prefix(6);
        } else if (detail::docker::starts_with(text, "CANCELED ")) {
            verdict = VertexEnd::cancelled;
            text.remove_prefix(9);
        }
        if (text.empty()) return;
        if (text.front() == '[') {
            if (const auto label = detail::docker::parse_step_label(text)) {
                on_tty_step(*label, verdict, seconds);
            } else if (detail::docker::is_internal_label(text)) {
                set_loading_context();
            }
        } else if (detail::docker::starts_with(text, "exporting to ")) {
            if (verdict) {  // an export that failed or was cancelled
                if (exporting_active_) {
                    exporting_active_ = false;
                    changed_ = true;
                }
                return;
            }
            if (!exporting_seen_) start_exporting(text);
            if (tty_finished_frame_) succeed_build({});
        } else if (detail::docker::starts_with(text, "FROM ")) {
            remember_pull(text);
        }
    }

    void on_tty_step(const detail::docker::StepLabel& label, std::optional<VertexEnd> verdict,
                     std::optional<double> seconds) {
        // Steps of one stage run one after another: a later step on screen means the earlier ones ended.
        for (std::size_t k = 0; k < running_.size();) {
            const std::size_t other = running_[k];
            if (steps_[other].stage == label.stage && steps_[other].stage_step < label.index) {
                finish_step(other, false, tracks_[other].shown_seconds);
            } else {
                ++k;
            }
        }
        const std::size_t pos = open_step(label);
        if (pos == no_step) return;
        tty_last_step_ = pos;
        if (seconds) tracks_[pos].shown_seconds = seconds;
        if (!verdict && tty_finished_frame_) verdict = VertexEnd::done;
        if (verdict == VertexEnd::cached) {
            finish_step(pos, true, std::nullopt);
        } else if (verdict == VertexEnd::failed) {
            fail_step(pos, {}, seconds);
        } else if (verdict == VertexEnd::cancelled) {
            cancel_step(pos);
        } else if (verdict == VertexEnd::done) {
            finish_step(pos, false, seconds);
        } else if (steps_[pos].done && seconds && steps_[pos].duration != seconds) {
            steps_[pos].duration = seconds;  // a redraw shows the finished step's final time
            changed_ = true;
        }
    }

    void remember_pull(std::string_view name) {
        const std::uint64_t h = detail::docker::text_hash(name);
        if (std::find(pull_names_.begin(), pull_names_.end(), h) != pull_names_.end()) return;
        if (pull_names_.size() >= detail::docker::max_pull_names) return;
        pull_names_.push_back(h);
        emit(Kind::pulling, step_, std::string(name), std::nullopt, name.substr(5));
    }

    // ---- legacy builder ----

    void on_legacy_step(std::string_view rest) {  // after `Step `: `3/8 : WORKDIR /app`
        if (format_ == DockerLogFormat::buildkit_plain || format_ == DockerLogFormat::buildkit_tty) return;
        const auto index = detail::docker::take_int(rest);
        if (!index || rest.empty() || rest.front() != '/') return;
        rest.remove_prefix(1);
        const auto total = detail::docker::take_int(rest);
        if (!total || !detail::docker::starts_with(rest, " :") || *index < 1 || *index > *total || *total > 9999)
            return;
        if (legacy_step_ != no_step && steps_[legacy_step_].stage_total != *total) return;  // a RUN's own text
        if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::legacy);
        if (legacy_step_ != no_step) finish_step(legacy_step_, false, std::nullopt);
        detail::docker::StepLabel label;
        label.index = *index;
        label.total = *total;
        label.instruction = detail::docker::trim_blanks(rest.substr(2));
        const std::size_t pos = open_step(label);
        if (pos == no_step) return;
        legacy_step_ = pos;
        legacy_in_container_ = false;
        stop_legacy_pull();
    }

    void on_legacy_arrow(std::string_view rest) {  // after ` ---> `
        const bool running_in = detail::docker::starts_with(rest, "Running in ");
        const bool removed = detail::docker::starts_with(rest, "Removed intermediate container ");
        const bool from_cache = rest == "Using cache";
        const bool committed = detail::docker::is_hex_id(rest);  // the image the step made: the step is done
        if (!running_in && !removed && !from_cache && !committed) return;
        if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::legacy);
        legacy_in_container_ = running_in;
        if (removed) return;
        stop_legacy_pull();
        if (legacy_step_ == no_step) return;
        if (from_cache) finish_step(legacy_step_, true, std::nullopt);
        if (committed) finish_step(legacy_step_, false, std::nullopt);
    }

    void stop_legacy_pull() {
        if (legacy_pulling_) {
            legacy_pulling_ = false;
            changed_ = true;
        }
    }

    // `Successfully built <id>` and `Successfully tagged <name>`; pip also says `Successfully built
    // <package>`, inside a RUN and without an image id.
    void on_legacy_success(std::string_view what, bool is_image_id) {
        if (format_ == DockerLogFormat::buildkit_plain || format_ == DockerLogFormat::buildkit_tty) return;
        if (legacy_in_container_ || (is_image_id && !detail::docker::is_hex_id(what))) return;
        if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::legacy);
        succeed_build(what);
    }

    void on_legacy_failure(std::string_view line) {
        if (format_ == DockerLogFormat::unknown) set_format(DockerLogFormat::legacy);
        fail_build(line, true);
    }

    // Lines the legacy builder itself prints between a step header and the step's container: pulls
    // of the image a FROM or COPY --from names, and the errors that end a COPY, ADD or FROM.
    void on_legacy_builder_message(std::string_view line) {
        if (detail::docker::starts_with(line, "COPY failed: ") || detail::docker::starts_with(line, "ADD failed: ") ||
            detail::docker::starts_with(line, "pull access denied for ") ||
            detail::docker::starts_with(line, "unable to prepare context: ")) {
            fail_build(line, true);
            return;
        }
        if (legacy_step_ == no_step || steps_[legacy_step_].done) return;
        const std::size_t at = line.find(": Pulling from ");
        if (at == std::string_view::npos || at == 0) return;
        legacy_pulling_ = true;
        const std::string image = std::string(line.substr(at + 15)) + ":" + std::string(line.substr(0, at));
        emit(Kind::pulling, steps_[legacy_step_].index, steps_[legacy_step_].instruction, std::nullopt, image);
    }

    // ---- state changes shared by every format ----

    void set_format(DockerLogFormat format) {
        format_ = format;
        changed_ = true;
    }

    void set_loading_context() {
        seen_docker_ = true;
        if (!loading_context_) {
            loading_context_ = true;
            changed_ = true;
        }
    }

    void start_exporting(std::string_view name) {
        finish_running_steps();
        exporting_active_ = true;
        exporting_seen_ = true;
        emit(Kind::exporting, step_, std::string(name), std::nullopt, {});
    }

    // The record of step `label`, created (and announced) the first time it appears; no_step when
    // the label contradicts its stage's known total or a bound is reached.
    std::size_t open_step(const detail::docker::StepLabel& label) {
        std::size_t stage = 0;
        while (stage < stages_.size() && stages_[stage].label != label.stage) ++stage;
        if (stage == stages_.size()) {
            if (stages_.size() >= detail::docker::max_stages) return no_step;
            Stage added;
            added.label = std::string(label.stage);
            added.total = label.total;
            added.offset = total_;
            stages_.push_back(std::move(added));
            total_ += label.total;
            changed_ = true;
        } else if (stages_[stage].total != label.total) {
            return no_step;
        }
        const auto key = std::make_pair(stage, label.index);
        if (const auto found = step_by_label_.find(key); found != step_by_label_.end()) return found->second;
        if (steps_.size() >= detail::docker::max_steps) return no_step;

        Stage& owner = stages_[stage];
        DockerStep step;
        step.index = owner.offset + label.index;
        step.instruction = detail::docker::bounded_text(label.instruction);
        step.stage = owner.label;
        step.stage_step = label.index;
        step.stage_total = label.total;
        if (timing_ == StepTiming::clock) step.started_at = now_;
        const std::size_t pos = steps_.size();
        steps_.push_back(std::move(step));
        tracks_.push_back(Track{stage, std::nullopt});
        step_by_label_.emplace(key, pos);
        if (label.index > owner.highest_seen) {
            step_ += label.index - owner.highest_seen;
            owner.highest_seen = label.index;
        }
        running_.push_back(pos);
        current_ = pos;
        emit(Kind::step_started, steps_[pos].index, steps_[pos].instruction, std::nullopt, {});
        return pos;
    }

    bool has_ended(std::size_t pos) const noexcept {
        const DockerStep& s = steps_[pos];
        return s.done || s.failed || s.cancelled;
    }

    void stop_running(std::size_t pos) {
        running_.erase(std::remove(running_.begin(), running_.end(), pos), running_.end());
        if (!running_.empty()) current_ = running_.back();
        if (timing_ == StepTiming::clock) steps_[pos].finished_at = now_;
    }

    std::optional<double> clock_duration(std::size_t pos) const noexcept {
        const DockerStep& s = steps_[pos];
        if (timing_ != StepTiming::clock || !s.started_at) return std::nullopt;
        return std::max(0.0, now_ - *s.started_at);
    }

    void finish_step(std::size_t pos, bool cached, std::optional<double> seconds) {
        if (has_ended(pos)) return;
        DockerStep& s = steps_[pos];
        s.done = true;
        s.cached = cached;
        if (!cached) s.duration = seconds ? seconds : clock_duration(pos);
        stop_running(pos);
        Stage& stage = stages_[tracks_[pos].stage];
        stage.highest_done = std::max(stage.highest_done, s.stage_step);
        update_progress();
        emit(cached ? Kind::step_cached : Kind::step_finished, s.index, s.instruction, s.duration, {});
    }

    void fail_step(std::size_t pos, std::string_view message, std::optional<double> seconds) {
        if (has_ended(pos)) return;
        DockerStep& s = steps_[pos];
        s.failed = true;
        s.duration = seconds ? seconds : clock_duration(pos);
        stop_running(pos);
        last_failed_ = pos;
        emit(Kind::step_failed, s.index, s.instruction, s.duration, message);
    }

    // Nothing runs once the image is being exported, or built.
    void finish_running_steps() {
        while (!running_.empty()) {
            const std::size_t pos = running_.front();
            finish_step(pos, false, tracks_[pos].shown_seconds);
        }
    }

    void cancel_step(std::size_t pos) {
        if (has_ended(pos)) return;
        steps_[pos].cancelled = true;
        stop_running(pos);
        changed_ = true;
    }

    void succeed_build(std::string_view what) {
        if (outcome_ != BuildOutcome::running) return;
        finish_running_steps();
        outcome_ = BuildOutcome::succeeded;
        exporting_active_ = false;
        active_pulls_ = 0;
        progress_ = 1.0;
        seen_docker_ = true;
        emit(Kind::build_succeeded, step_, {}, std::nullopt, what);
    }

    // `in_current_step`: the legacy builder's error belongs to the step it was running.
    void fail_build(std::string_view message, bool in_current_step) {
        if (outcome_ == BuildOutcome::failed) return;  // the first error is the cause; the rest follow from it
        if (in_current_step && legacy_step_ != no_step) fail_step(legacy_step_, message, std::nullopt);
        while (!running_.empty()) cancel_step(running_.back());
        outcome_ = BuildOutcome::failed;
        error_ = detail::docker::bounded_text(message);
        exporting_active_ = false;
        legacy_pulling_ = false;
        active_pulls_ = 0;
        seen_docker_ = true;
        const int where = last_failed_ != no_step ? steps_[last_failed_].index : step_;
        const std::string failed_instruction =
            last_failed_ != no_step ? steps_[last_failed_].instruction : std::string();
        emit(Kind::build_failed, where, failed_instruction, std::nullopt, message);
    }

    void update_progress() noexcept {
        int done = 0;
        for (const Stage& stage : stages_) done += stage.highest_done;
        if (total_ > 0) progress_ = std::max(progress_, std::min(1.0, static_cast<double>(done) / total_));
    }

    void emit(Kind kind, int step, std::string_view instruction, std::optional<double> seconds,
              std::string_view message) {
        if (events_.size() >= detail::docker::max_pending_events) {
            events_.pop_front();
            ++dropped_events_;
        }
        DockerStepEvent event;
        event.kind = kind;
        event.step = step;
        event.total = total_;
        event.instruction = detail::docker::bounded_text(instruction);
        event.seconds = seconds;
        event.message = detail::docker::bounded_text(message);
        events_.push_back(std::move(event));
        changed_ = true;
    }

    struct Track {
        std::size_t stage = 0;
        std::optional<double> shown_seconds;  // tty: the time last drawn beside the step
    };

    StepTiming timing_;
    DockerLogFormat format_ = DockerLogFormat::unknown;
    bool seen_docker_ = false;
    double now_ = 0.0;
    bool changed_ = false;

    std::vector<Stage> stages_;
    std::vector<DockerStep> steps_;
    std::vector<Track> tracks_;  // parallel to steps_
    std::map<std::pair<std::size_t, int>, std::size_t> step_by_label_;
    std::vector<std::size_t> running_;  // steps started and not ended, in the order they started
    std::optional<std::size_t> current_;
    std::size_t last_failed_ = no_step;
    int step_ = 0;
    int total_ = 0;
    double progress_ = 0.0;

    BuildOutcome outcome_ = BuildOutcome::running;
    std::string error_;
    bool loading_context_ = false;
    bool exporting_active_ = false;
    bool exporting_seen_ = false;
    int active_pulls_ = 0;

    std::deque<DockerStepEvent> events_;
    std::size_t dropped_events_ = 0;

    std::unordered_map<int, Vertex> vertices_;  // BuildKit plain: vertex number → what it is
    bool in_error_block_ = false;

    bool tty_finished_frame_ = false;
    std::size_t tty_last_step_ = no_step;
    std::vector<std::uint64_t> pull_names_;

    std::size_t legacy_step_ = no_step;
    bool legacy_in_container_ = false;
    bool legacy_pulling_ = false;

    std::string no_instruction_;
};

}  // namespace azops
// #include <azops/docker_parser.hpp> — end
// #include <azops/boot_parser.hpp> — begin
// azops/boot_parser.hpp — the Windows container's boot log (dockurr/windows) as boot phases.
//
// Owns: BootLogParser, fed one sanitised line at a time (see log_tail.hpp). It turns the container's
// `❯ <text>` info lines, its `❯ ERROR: <text>` lines and wget's download progress (dot rows such as
// `3342336K ........ ........ 52%  118M 28s`, or the bar form when the container had a TTY) into a
// phase, step X of Y, download % and remaining seconds, a progress fraction that never goes
// backwards, the VNC hint URL and the error that stopped the boot.
// Thread-safety: a plain value; the owner guards it. Errors: none — every line is accepted, lines the
// parser does not know leave its state alone; nothing throws but std::bad_alloc.

#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>


namespace azops {

// The phases of a dockurr/windows container, in the order a first boot goes through them. A boot
// from an installed disk goes from `waiting` straight to `booting`.
enum class BootPhase {
    waiting,         // nothing yet, or the container's banner
    downloading,     // asking Microsoft for the ISO, then wget
    extracting,      // unpacking the ISO, detecting the edition
    adding_drivers,  // answer file, virtio drivers, OEM folder
    building_image,  // writing the prepared ISO
    creating_disk,   // creating (or resizing) the data disk
    booting,         // QEMU started
    started,         // QEMU shows a screen; Windows Setup goes on inside the VM
    failed,          // a `❯ ERROR:` line the container did not recover from
};

// Machine-readable name of a phase, as written to the status file's `phase`.
inline std::string_view boot_phase_name(BootPhase phase) noexcept {
    switch (phase) {
        case BootPhase::waiting: return "waiting_for_container";
        case BootPhase::downloading: return "downloading_windows";
        case BootPhase::extracting: return "extracting_image";
        case BootPhase::adding_drivers: return "adding_drivers";
        case BootPhase::building_image: return "building_image";
        case BootPhase::creating_disk: return "creating_disk";
        case BootPhase::booting: return "booting_qemu";
        case BootPhase::started: return "windows_started";
        case BootPhase::failed: return "failed";
    }
    return "failed";
}

namespace detail::boot {

inline constexpr std::string_view info_marker = "\xE2\x9D\xAF ";  // "❯ " (U+276F)

using text::contains;
using text::is_digit;
using text::starts_with;
using text::trim_blanks;

// `docker logs --timestamps` puts `2026-01-28T22:55:14.123456789Z ` before every line.
inline std::string_view strip_docker_timestamp(std::string_view s) noexcept {
    if (s.size() < 21 || !is_digit(s[0]) || s[4] != '-' || s[10] != 'T') return s;
    const std::size_t z = s.find("Z ", 19);
    if (z > 36) return s;  // npos too: no timestamp
    return s.substr(z + 2);
}

// A run of digits with an optional fraction, at most 12 digits in all so the value stays exact.
inline std::optional<double> parse_decimal(std::string_view s, std::size_t& i) noexcept {
    double value = 0;
    int digits = 0;
    while (i < s.size() && is_digit(s[i])) {
        if (++digits > 12) return std::nullopt;
        value = value * 10 + (s[i++] - '0');
    }
    if (digits == 0) return std::nullopt;
    if (i < s.size() && s[i] == '.') {
        ++i;
        double scale = 0.1;
        while (i < s.size() && is_digit(s[i])) {
            if (++digits > 12) return std::nullopt;
            value += (s[i++] - '0') * scale;
            scale /= 10;
        }
    }
    return value;
}

// wget's short durations: `28s`, `1m27s`, `1h2m`, `2d3h`, `120d`; the bar form puts spaces between
// the parts (`1m 27s`); a finished download prints its total time, possibly with a fraction (`0.8s`).
inline std::optional<double> parse_duration(std::string_view s) noexcept {
    s = trim_blanks(s);
    if (s.empty()) return std::nullopt;
    double total = 0;
    int last_rank = 5;
    std::size_t i = 0;
    while (i < s.size()) {
        const auto number = parse_decimal(s, i);
        if (!number || i >= s.size()) return std::nullopt;
        int rank = 0;
        double unit = 0;
        switch (s[i]) {
            case 'd': rank = 4; unit = 86400; break;
            case 'h': rank = 3; unit = 3600; break;
            case 'm': rank = 2; unit = 60; break;
            case 's': rank = 1; unit = 1; break;
            default: return std::nullopt;
        }
        if (rank >= last_rank) return std::nullopt;
        last_rank = rank;
        total += *number * unit;
        ++i;
        while (i < s.size() && s[i] == ' ') ++i;
    }
    return total;
}

struct DownloadProgress {
    std::optional<double> pct;
    std::optional<double> eta_seconds;
};

// A wget dot row: `<bytes>K <dots> <pct>% <speed> <eta>`; the last row ends `<speed>=<total time>`.
// A resumed download shows the part it already had as `,`. A download of unknown size prints no
// percentage: still a progress row, without a figure.
inline std::optional<DownloadProgress> parse_wget_dots(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size() && s[i] == ' ') ++i;
    const std::size_t digits_begin = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == digits_begin || i - digits_begin > 15 || i + 1 >= s.size()) return std::nullopt;
    if ((s[i] != 'K' && s[i] != 'M' && s[i] != 'G') || s[i + 1] != ' ') return std::nullopt;
    i += 2;
    std::size_t dots = 0;
    for (; i < s.size() && (s[i] == '.' || s[i] == ',' || s[i] == ' '); ++i) {
        if (s[i] != ' ') ++dots;
    }
    if (dots == 0) return std::nullopt;
    DownloadProgress progress;
    if (i == s.size()) return progress;
    std::size_t pct_end = i;
    while (pct_end < s.size() && is_digit(s[pct_end])) ++pct_end;
    if (pct_end == i || pct_end - i > 3 || pct_end >= s.size() || s[pct_end] != '%') return std::nullopt;
    int pct = 0;
    for (std::size_t k = i; k < pct_end; ++k) pct = pct * 10 + (s[k] - '0');
    if (pct > 100) return std::nullopt;
    progress.pct = pct;
    std::string_view rest = trim_blanks(s.substr(pct_end + 1));
    const std::size_t speed_end = rest.find_first_of(" =");
    if (speed_end == std::string_view::npos) return progress;
    if (rest[speed_end] == '=') {
        if (parse_duration(rest.substr(speed_end + 1))) progress.eta_seconds = 0.0;
        return progress;
    }
    progress.eta_seconds = parse_duration(rest.substr(speed_end + 1));
    return progress;
}

// wget's bar: `win11x64.iso   52%[=======>      ]   3.21G  118MB/s    eta 28s` (ends `in 58s`).
inline std::optional<DownloadProgress> parse_wget_bar(std::string_view s) noexcept {
    const std::size_t bar = s.find("%[");
    if (bar == std::string_view::npos || bar == 0) return std::nullopt;
    std::size_t begin = bar;
    while (begin > 0 && is_digit(s[begin - 1]) && bar - begin < 3) --begin;
    if (begin == bar || (begin > 0 && s[begin - 1] != ' ')) return std::nullopt;
    int pct = 0;
    for (std::size_t k = begin; k < bar; ++k) pct = pct * 10 + (s[k] - '0');
    const std::size_t close = s.find(']', bar);
    if (pct > 100 || close == std::string_view::npos) return std::nullopt;
    DownloadProgress progress;
    progress.pct = pct;
    const std::string_view tail = s.substr(close);
    if (const std::size_t eta = tail.rfind(" eta "); eta != std::string_view::npos) {
        progress.eta_seconds = parse_duration(tail.substr(eta + 5));
    } else if (const std::size_t done = tail.rfind(" in "); done != std::string_view::npos) {
        if (parse_duration(tail.substr(done + 4))) progress.eta_seconds = 0.0;
    }
    return progress;
}

// `1h02m`, `1m27s`, `28s`: short enough for the status line.
inline std::string format_seconds(double seconds) {
    const long s = std::lround(seconds);
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return std::to_string(s / 60) + "m" + (s % 60 < 10 ? "0" : "") + std::to_string(s % 60) + "s";
    const long m = (s / 60) % 60;
    return std::to_string(s / 3600) + "h" + (m < 10 ? "0" : "") + std::to_string(m) + "m";
}

// Where each phase starts on the progress bar. A first boot spends comparable time downloading,
// unpacking and rebuilding the ISO, then little creating the disk and starting QEMU.
inline double phase_start_fraction(BootPhase phase) noexcept {
    switch (phase) {
        case BootPhase::waiting: return 0.0;
        case BootPhase::downloading: return 0.05;
        case BootPhase::extracting: return 0.45;
        case BootPhase::adding_drivers: return 0.60;
        case BootPhase::building_image: return 0.70;
        case BootPhase::creating_disk: return 0.85;
        case BootPhase::booting: return 0.90;
        case BootPhase::started: return 1.0;
        case BootPhase::failed: return 0.0;
    }
    return 0.0;
}

inline constexpr double download_share = 0.40;  // downloading runs from 0.05 to 0.45

// What a `❯ ` line (marker already removed) tells about the boot.
enum class InfoKind { error, warning, banner, preamble, phase, other };

struct InfoLine {
    InfoKind kind = InfoKind::other;
    BootPhase phase = BootPhase::waiting;  // for InfoKind::phase
    std::string_view text;                 // for errors, the message after `ERROR:`
};

inline InfoLine classify_info(std::string_view text) noexcept {
    const auto phase = [&](BootPhase p) { return InfoLine{InfoKind::phase, p, text}; };
    if (starts_with(text, "ERROR:")) return {InfoKind::error, BootPhase::failed, trim_blanks(text.substr(6))};
    if (starts_with(text, "Warning:")) return {InfoKind::warning, BootPhase::waiting, text};
    if (starts_with(text, "Starting ") && contains(text, " for Docker")) return {InfoKind::banner, BootPhase::waiting, text};
    if (starts_with(text, "For support visit") || starts_with(text, "CPU: ")) {
        return {InfoKind::preamble, BootPhase::waiting, text};
    }
    if (starts_with(text, "Requesting ") || starts_with(text, "Downloading ")) return phase(BootPhase::downloading);
    // The container tries another source after a failed or blocked download.
    if (starts_with(text, "Failed to download ") && contains(text, "will try")) return phase(BootPhase::downloading);
    if (starts_with(text, "Extracting ")) return phase(BootPhase::extracting);
    if (starts_with(text, "Adding ")) return phase(BootPhase::adding_drivers);
    if (starts_with(text, "Building ")) return phase(BootPhase::building_image);
    if (starts_with(text, "Creating a ") || starts_with(text, "Resizing ")) return phase(BootPhase::creating_disk);
    if (starts_with(text, "Booting ")) return phase(BootPhase::booting);
    if (contains(text, " started successfully")) return phase(BootPhase::started);
    return {InfoKind::other, BootPhase::waiting, text};
}

// A line that starts a new download attempt, so the previous attempt's figures no longer apply.
inline bool starts_download_attempt(std::string_view text) noexcept {
    return starts_with(text, "Downloading ") || starts_with(text, "Failed to download ");
}

// The URL after "visit " in `Windows started successfully, visit http://127.0.0.1:8006/ to view the screen...`.
inline std::optional<std::string_view> visit_url(std::string_view text) noexcept {
    const std::size_t visit = text.find("visit ");
    if (visit == std::string_view::npos) return std::nullopt;
    std::string_view url = text.substr(visit + 6);
    url = url.substr(0, url.find(' '));
    while (!url.empty() && (url.back() == '.' || url.back() == ',')) url.remove_suffix(1);
    if (!starts_with(url, "http://") && !starts_with(url, "https://")) return std::nullopt;
    return url;
}

// Progress from a wget line of either form, or nothing when the line is not one.
inline std::optional<DownloadProgress> parse_wget(std::string_view line) noexcept {
    if (line.empty()) return std::nullopt;
    if (line[0] == ' ' || is_digit(line[0])) {
        if (auto dots = parse_wget_dots(line)) return dots;
    }
    if (line.find('%') == std::string_view::npos) return std::nullopt;
    return parse_wget_bar(line);
}

}  // namespace detail::boot

class BootLogParser {
public:
    static constexpr int step_count = 7;

    // Feeds one sanitised line; returns true when anything this parser reports changed.
    bool feed(std::string_view line) {
        namespace boot = detail::boot;
        changed_ = false;
        line = boot::trim_blanks(boot::strip_docker_timestamp(line));
        // `wget -q --show-progress` never ends its last dot row, so the next `❯` line can follow it.
        const std::size_t marker = line.find(boot::info_marker);
        if (marker != 0) feed_progress(line.substr(0, marker));
        if (marker != std::string_view::npos) {
            on_info(boot::classify_info(boot::trim_blanks(line.substr(marker + boot::info_marker.size()))));
        }
        return changed_;
    }

    BootPhase phase() const noexcept { return phase_; }
    std::string phase_name() const { return std::string(boot_phase_name(phase_)); }

    // Step X of total_steps(): downloading is 1, windows started is 7; 0 before any phase. A failed
    // boot keeps the step it failed in.
    int step() const noexcept { return step_of(phase_ == BootPhase::failed ? last_active_ : phase_); }
    static int total_steps() noexcept { return step_count; }

    // 0..1 over the whole boot; the highest value reached so far, so it never goes backwards (not
    // across a download retry, nor across a container restart within the same log).
    double progress_fraction() const noexcept { return progress_; }

    // The running download's percentage and wget's estimate of its remaining seconds, while the
    // current (or failed) phase is the download.
    std::optional<double> download_pct() const noexcept { return download_pct_; }
    std::optional<double> download_eta_seconds() const noexcept { return download_eta_; }

    // Human-readable line for the current phase, e.g. `Downloading Windows 11 Enterprise... 52% (28s left)`.
    const std::string& detail() const noexcept { return detail_; }

    // The first `❯ ERROR:` text since the container last made progress; absent unless failed.
    std::optional<std::string> error() const { return error_; }

    // The address the container printed with "Windows started successfully, visit …"; it names the
    // container's side of the port (127.0.0.1:8006), which a caller maps to where it can reach it.
    std::optional<std::string> vnc_hint_url() const { return vnc_hint_; }

    // True once a line only a dockurr/windows container prints has been seen.
    bool is_boot_log() const noexcept { return is_boot_log_; }

    // How many times the container's banner came again after the boot had begun (a restarted
    // container keeps its earlier output in `docker logs`).
    int restarts() const noexcept { return restarts_; }

private:
    static int step_of(BootPhase phase) noexcept {
        switch (phase) {
            case BootPhase::downloading: return 1;
            case BootPhase::extracting: return 2;
            case BootPhase::adding_drivers: return 3;
            case BootPhase::building_image: return 4;
            case BootPhase::creating_disk: return 5;
            case BootPhase::booting: return 6;
            case BootPhase::started: return 7;
            case BootPhase::waiting:
            case BootPhase::failed: return 0;
        }
        return 0;
    }

    void feed_progress(std::string_view line) {
        if (!accepts_download_progress()) return;
        if (const auto progress = detail::boot::parse_wget(detail::boot::trim_blanks(line))) on_download_progress(*progress);
    }

    bool accepts_download_progress() const noexcept {
        // A log picked up in the middle of a download starts with dot rows and no `❯` line.
        return phase_ == BootPhase::downloading || (phase_ == BootPhase::waiting && !begun_);
    }

    void on_info(const detail::boot::InfoLine& info) {
        using Kind = detail::boot::InfoKind;
        if (info.kind != Kind::other) mark_boot_log();
        switch (info.kind) {
            case Kind::error: fail(info.text); break;
            case Kind::banner:
                if (begun_ || phase_ != BootPhase::waiting) restart();
                set_detail(info.text);
                break;
            case Kind::phase: enter(info.phase, info.text); break;
            case Kind::other:
                // e.g. `Verifying downloaded ISO...`, `Detected: Windows 11 Enterprise`
                if (phase_ != BootPhase::waiting && phase_ != BootPhase::failed && phase_ != BootPhase::started) {
                    set_detail(info.text);
                }
                break;
            case Kind::warning:
            case Kind::preamble: break;
        }
    }

    void enter(BootPhase next, std::string_view text) {
        begun_ = true;
        if (error_) {  // the container went on after its error: it was not fatal
            error_.reset();
            changed_ = true;
        }
        if (next != BootPhase::downloading || detail::boot::starts_download_attempt(text)) clear_download();
        set_phase(next);
        if (next == BootPhase::downloading) {
            download_label_ = std::string(text);
            refresh_download_detail();
        } else {
            set_detail(text);
        }
        if (next == BootPhase::started) take_vnc_hint(text);
        raise_progress();
    }

    void on_download_progress(const detail::boot::DownloadProgress& progress) {
        if (phase_ == BootPhase::waiting) {
            begun_ = true;
            set_phase(BootPhase::downloading);
            download_label_ = "Downloading Windows...";
        }
        if (progress.pct != download_pct_) {
            download_pct_ = progress.pct;
            changed_ = true;
        }
        if (progress.eta_seconds != download_eta_) {
            download_eta_ = progress.eta_seconds;
            changed_ = true;
        }
        refresh_download_detail();
        raise_progress();
    }

    void fail(std::string_view message) {
        if (phase_ == BootPhase::failed) return;  // later lines explain the first (e.g. KVM advice)
        set_phase(BootPhase::failed);
        error_ = std::string(message.empty() ? std::string_view("unspecified error") : message);
        set_detail("ERROR: " + *error_);
        changed_ = true;
    }

    void restart() {
        ++restarts_;
        begun_ = false;
        error_.reset();
        clear_download();
        set_phase(BootPhase::waiting);
        changed_ = true;
    }

    void mark_boot_log() {
        if (!is_boot_log_) {
            is_boot_log_ = true;
            changed_ = true;
        }
    }

    void set_phase(BootPhase next) {
        if (next != BootPhase::failed) last_active_ = next;
        if (phase_ != next) {
            phase_ = next;
            changed_ = true;
        }
    }

    void set_detail(std::string_view text) {
        if (detail_ != text) {
            detail_.assign(text.data(), text.size());
            changed_ = true;
        }
    }

    void clear_download() {
        if (download_pct_ || download_eta_) changed_ = true;
        download_pct_.reset();
        download_eta_.reset();
    }

    void refresh_download_detail() {
        std::string text = download_label_;
        if (download_pct_) {
            text += ' ';
            text += std::to_string(static_cast<int>(*download_pct_));
            text += '%';
            if (download_eta_ && *download_eta_ > 0) {
                text += " (" + detail::boot::format_seconds(*download_eta_) + " left)";
            }
        }
        set_detail(text);
    }

    void take_vnc_hint(std::string_view text) {
        const auto url = detail::boot::visit_url(text);
        if (url && vnc_hint_ != *url) {
            vnc_hint_ = std::string(*url);
            changed_ = true;
        }
    }

    void raise_progress() {
        double value = detail::boot::phase_start_fraction(phase_);
        if (phase_ == BootPhase::downloading && download_pct_) {
            value += detail::boot::download_share * (*download_pct_ / 100.0);
        }
        if (value > progress_) {
            progress_ = value;
            changed_ = true;
        }
    }

    BootPhase phase_ = BootPhase::waiting;
    BootPhase last_active_ = BootPhase::waiting;
    bool begun_ = false;  // a phase line (not just the banner) came since the container last started
    bool is_boot_log_ = false;
    bool changed_ = false;
    int restarts_ = 0;
    double progress_ = 0.0;
    std::optional<double> download_pct_;
    std::optional<double> download_eta_;
    std::string download_label_;
    std::string detail_;
    std::optional<std::string> error_;
    std::optional<std::string> vnc_hint_;
};

}  // namespace azops
// #include <azops/boot_parser.hpp> — end
// #include <azops/waa_parser.hpp> — begin
// azops/waa_parser.hpp — the Windows Agent Arena benchmark log as task K of N.
//
// Owns: WaaLogParser, fed one sanitised line at a time (see log_tail.hpp). It reads what WAA's run.py
// and lib_run_single.py print — the `Left tasks:` block, `[Domain]: …`, `[Example ID]: …`, `Step N: …`,
// `Result: x.xx`, `Finished domain/id`, `Exception in domain/id: …`, `Average score: …` — with or
// without the logger's `[2026-01-28 22:55:15,221 INFO run/262-MainProcess] ` prefix, among lines from
// other loggers, and reports task K of N, the current domain, task and agent step, successes, failures,
// the average score, the error that ended the run, and task events a tracker can time.
// Thread-safety: a plain value; the owner guards it. Errors: none — every line is accepted, lines the
// parser does not know leave its state alone; nothing throws but std::bad_alloc.

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>


namespace azops {

enum class WaaEventKind { task_started, task_finished, benchmark_finished };

inline std::string_view waa_event_kind_name(WaaEventKind kind) noexcept {
    switch (kind) {
        case WaaEventKind::task_started: return "task_started";
        case WaaEventKind::task_finished: return "task_finished";
        case WaaEventKind::benchmark_finished: return "benchmark_finished";
    }
    return "task_started";
}

struct WaaEvent {
    WaaEventKind kind = WaaEventKind::task_started;
    int task_index = 0;   // K, counting distinct tasks from 1; 0 for benchmark_finished
    int total_tasks = 0;  // N when the event happened; 0 while unknown
    std::string domain;
    std::string task_id;                  // empty for a Result whose task start was not in the log
    std::optional<double> result;         // task_finished: the evaluator's score, absent if none was printed
    bool success = false;                 // task_finished: result > 0
    bool rerun = false;                   // the task had already finished earlier in this log
    std::optional<std::string> error;     // task_finished: the exception that ended the task
    std::optional<double> average_score;  // benchmark_finished
    std::string log_time;                 // `2026-01-28 22:55:15,221` of the latest log record, or empty
    // The same instant as seconds since 1970, reading the printed local time as UTC: exact for
    // differences between events, which is what timing a task needs.
    std::optional<double> log_seconds;
};

namespace detail::waa {

using text::is_digit;
using text::starts_with;
using text::trim_blanks;
using text::trim_end_blanks;

// The whole of `s` as a finite number (`0.00`, `0.2`, `1e-05`), locale-independent.
inline std::optional<double> parse_number(std::string_view s) noexcept {
    s = trim_blanks(s);
    if (s.empty() || !(is_digit(s[0]) || s[0] == '-' || s[0] == '.')) return std::nullopt;
    double value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) return std::nullopt;
    return value;
}

// A non-negative count of at most nine digits (the whole of `s`).
inline std::optional<int> parse_count(std::string_view s) noexcept {
    if (s.empty() || s.size() > 9) return std::nullopt;
    int value = 0;
    for (const char c : s) {
        if (!is_digit(c)) return std::nullopt;
        value = value * 10 + (c - '0');
    }
    return value;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
inline std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    if (m <= 2) --y;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct LogPrefix {
    std::string_view time;   // `2026-01-28 22:55:15,221`
    std::string_view level;  // `INFO`
    std::string_view message;
    double seconds = 0;
};

// Python logging's asctime, `YYYY-MM-DD HH:MM:SS,mmm`, as seconds since 1970 read as UTC.
inline std::optional<double> parse_asctime(std::string_view t) noexcept {
    if (t.size() != 23) return std::nullopt;
    static constexpr std::string_view shape = "dddd-dd-dd dd:dd:dd,ddd";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == 'd' ? !is_digit(t[i]) : t[i] != shape[i]) return std::nullopt;
    }
    const auto num = [&](std::size_t at, std::size_t len) {
        int v = 0;
        for (std::size_t i = at; i < at + len; ++i) v = v * 10 + (t[i] - '0');
        return v;
    };
    const int month = num(5, 2);
    const int day = num(8, 2);
    const int hour = num(11, 2);
    const int minute = num(14, 2);
    const int second = num(17, 2);
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
    const std::int64_t days = days_from_civil(num(0, 4), static_cast<unsigned>(month), static_cast<unsigned>(day));
    return static_cast<double>(days * 86400 + std::int64_t{hour} * 3600 + std::int64_t{minute} * 60 + second) +
           num(20, 3) / 1000.0;
}

// WAA's logger prefix: `[<asctime> <LEVEL> <module>/<lineno>-<process>] <message>`.
inline std::optional<LogPrefix> split_prefix(std::string_view line) noexcept {
    if (line.size() < 26 || line[0] != '[' || !is_digit(line[1]) || line[24] != ' ') return std::nullopt;
    const auto seconds = parse_asctime(line.substr(1, 23));
    if (!seconds) return std::nullopt;
    const std::size_t close = line.substr(0, 200).find(']', 25);
    if (close == std::string_view::npos) return std::nullopt;
    LogPrefix prefix;
    prefix.time = line.substr(1, 23);
    prefix.seconds = *seconds;
    const std::string_view header = line.substr(25, close - 25);
    prefix.level = header.substr(0, header.find(' '));
    prefix.message = line.substr(close + 1);
    if (!prefix.message.empty() && prefix.message.front() == ' ') prefix.message.remove_prefix(1);
    return prefix;
}

// The prefix at the start of the line, or after text glued in front of it: tqdm draws its bars on
// stderr with `\r` and no newline, so in a merged stream a log record can follow a bar on one line.
inline std::optional<LogPrefix> find_prefix(std::string_view line) noexcept {
    for (std::size_t at = line.find('['); at != std::string_view::npos; at = line.find('[', at + 1)) {
        if (auto prefix = split_prefix(line.substr(at))) return prefix;
    }
    return std::nullopt;
}

// One line of the `Left tasks:` block: `chrome: 17`.
inline std::optional<int> domain_count(std::string_view line) noexcept {
    const std::size_t colon = line.find(": ");
    if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
    for (std::size_t i = 0; i < colon; ++i) {
        const char c = line[i];
        const bool name_char = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-';
        if (!name_char) return std::nullopt;
    }
    return parse_count(line.substr(colon + 2));
}

// `Worker 0 is doing tasks: [('chrome', '<id>'), ...]`: the number of tasks, if the list is whole
// (a list longer than a sanitised line's limit arrives cut and cannot be counted).
inline std::optional<int> worker_task_count(std::string_view message) noexcept {
    const std::size_t open = message.find(" is doing tasks: [");
    if (open == std::string_view::npos || message.back() != ']') return std::nullopt;
    if (message.find("\xE2\x80\xA6[cut ") != std::string_view::npos) return std::nullopt;
    int tuples = 0;
    for (std::size_t i = open; i < message.size(); ++i) {
        if (message[i] == '(') ++tuples;
    }
    return tuples;
}

// `domain/id` → (domain, id), both non-empty and without spaces.
inline std::optional<std::pair<std::string_view, std::string_view>> domain_and_id(std::string_view s) noexcept {
    const std::size_t slash = s.find('/');
    if (slash == 0 || slash == std::string_view::npos || slash + 1 >= s.size()) return std::nullopt;
    const std::string_view domain = s.substr(0, slash);
    const std::string_view id = s.substr(slash + 1);
    if (domain.find(' ') != std::string_view::npos || id.find(' ') != std::string_view::npos) return std::nullopt;
    return std::make_pair(domain, id);
}

// At most `max_bytes` of `s`, cut on a UTF-8 character boundary, marked with an ellipsis when cut.
inline std::string clip(std::string_view s, std::size_t max_bytes) {
    if (s.size() <= max_bytes) return std::string(s);
    std::size_t end = max_bytes;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    return std::string(s.substr(0, end)) + "\xE2\x80\xA6";
}

inline std::string format_score(double v) {
    std::array<char, 32> buf;
    const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, 2);
    return ec == std::errc() ? std::string(buf.data(), end) : std::string("?");
}

}  // namespace detail::waa

class WaaLogParser {
public:
    // Events waiting for take_events() beyond this many drop the oldest: a caller that never takes
    // them must not grow without bound.
    static constexpr std::size_t max_pending_events = 10000;
    // Distinct task ids remembered for re-run detection; WAA has 154 tasks, so this only bounds garbage.
    static constexpr std::size_t max_tracked_tasks = 100000;

    // Feeds one sanitised line; returns true when anything this parser reports changed.
    bool feed(std::string_view line) {
        namespace waa = detail::waa;
        changed_ = false;
        line = waa::trim_end_blanks(line);  // leading blanks mark a traceback's frames
        const auto prefix = waa::find_prefix(line);
        if (prefix) {
            if (log_time_ != prefix->time) log_time_.assign(prefix->time.data(), prefix->time.size());
            log_seconds_ = prefix->seconds;
            if (traceback_ == Traceback::logged || traceback_ == Traceback::of_task) traceback_ = Traceback::none;
        }
        const std::string_view message = prefix ? prefix->message : line;

        if (in_left_block_) {
            if (!prefix) {
                if (const auto count = waa::domain_count(message)) {
                    left_sum_ = cap_add(left_sum_, *count);
                    set_total(cap_add(block_base_, left_sum_));
                    return changed_;
                }
            }
            end_left_block();
        }
        if (traceback_ != Traceback::none && !prefix && continue_traceback(message)) return changed_;

        // A task's exception message may run over several lines before WAA logs its traceback.
        const bool after_task_exception = after_task_exception_;
        if (prefix) after_task_exception_ = false;
        on_message(message, prefix ? prefix->level : std::string_view(), prefix.has_value(), after_task_exception);
        return changed_;
    }

    // Tasks finished so far (each distinct task once, however often it ran).
    int tasks_done() const noexcept { return done_; }
    // N from the `Left tasks:` block (or the worker's own task list), plus the tasks done before a
    // restarted run.py printed its block, each distinct task once; 0 while unknown.
    int total_tasks() const noexcept { return total_; }
    const std::string& current_domain() const noexcept { return domain_; }
    const std::string& current_task_id() const noexcept { return current_id_; }
    // K of the current task (1-based), 0 before the first.
    int current_task_index() const noexcept { return current_index_; }
    const std::string& current_instruction() const noexcept { return instruction_; }
    // The agent's latest `Step N:` in the current task; 0 before its first step.
    int agent_step() const noexcept { return agent_step_; }
    // Finished tasks whose result was above 0, and the others (no result, or an exception, counts as
    // a failure); successes() + failures() == tasks_done().
    int successes() const noexcept { return successes_; }
    int failures() const noexcept { return failures_; }
    std::optional<double> average_score() const noexcept { return average_; }
    std::optional<double> last_result() const noexcept { return last_result_; }
    // The latest error with no benchmark progress after it: an uncaught traceback's exception line, an
    // ERROR line, an interruption. A task's own exception is a failed task, not this.
    std::optional<std::string> error() const { return error_; }
    bool is_finished() const noexcept { return stage_ == Stage::finished; }
    // True once a line only WAA prints has been seen.
    bool is_waa_log() const noexcept { return is_waa_log_; }

    // `waiting`, `waiting_for_server`, `starting_benchmark`, `running_task_K`, `finished`, `failed`.
    std::string phase_name() const {
        if (error_) return "failed";
        switch (stage_) {
            case Stage::waiting: return "waiting";
            case Stage::waiting_for_server: return "waiting_for_server";
            case Stage::starting: return "starting_benchmark";
            case Stage::running:
                return current_index_ > 0 ? "running_task_" + std::to_string(current_index_) : "running_tasks";
            case Stage::finished: return "finished";
        }
        return "waiting";
    }

    std::string detail() const {
        using detail::waa::clip;
        if (error_) return "Failed: " + clip(*error_, 300);
        switch (stage_) {
            case Stage::waiting: return is_waa_log_ ? "Benchmark starting" : "Waiting for the benchmark";
            case Stage::waiting_for_server:
                return server_note_.empty() ? "Waiting for the WAA server in Windows"
                                            : "Waiting for the WAA server in Windows: " + clip(server_note_, 200);
            case Stage::starting:
                return total_ > 0 ? "Benchmark starting: " + std::to_string(total_) + " tasks" : "Benchmark starting";
            case Stage::running: return running_detail();
            case Stage::finished: {
                std::string text = "Finished " + std::to_string(done_) + " tasks: " + std::to_string(successes_) +
                                   " succeeded, " + std::to_string(failures_) + " failed";
                if (average_) text += ", average score " + detail::waa::format_score(*average_);
                return text;
            }
        }
        return {};
    }

    // 0..1: tasks done of N (1 once the benchmark printed its average); never goes backwards.
    double progress_fraction() const noexcept { return progress_; }

    // The events since the last call, oldest first.
    std::vector<WaaEvent> take_events() {
        std::vector<WaaEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
        events_.clear();
        return out;
    }

private:
    enum class Stage { waiting, waiting_for_server, starting, running, finished };
    // A traceback being read: printed by Python for an uncaught exception (bare), logged by WAA for a
    // task's exception (of_task), or logged elsewhere (logged).
    enum class Traceback { none, bare, logged, of_task };

    struct Task {
        int index = 0;
        std::string domain;
        bool counted = false;   // included in done_
        bool finished = false;  // finished since its latest start
        bool success = false;
        std::optional<double> result;  // of its latest finish
    };

    void on_message(std::string_view m, std::string_view level, bool prefixed, bool after_task_exception) {
        namespace waa = detail::waa;
        using waa::starts_with;
        if (starts_with(m, "Left tasks:")) {
            progressed();
            in_left_block_ = true;
            block_base_ = done_;  // a restarted run.py lists only what is left
            left_sum_ = 0;
            set_total(block_base_);
            set_stage(Stage::starting);
        } else if (starts_with(m, "Worker ") && m.find(" is doing tasks: [") != std::string_view::npos) {
            saw_waa();
            if (const auto count = waa::worker_task_count(m)) {
                set_total(cap_add(block_base_, *count));
                raise_progress();
            }
        } else if (starts_with(m, "[Domain]: ")) {
            saw_waa();
            pending_domain_ = std::string(waa::trim_blanks(m.substr(10)));
        } else if (starts_with(m, "[Example ID]: ")) {
            saw_waa();
            const std::string_view id = waa::trim_blanks(m.substr(14));
            if (!id.empty()) start_task(id);
        } else if (starts_with(m, "[Instruction]: ")) {
            set_text(instruction_, waa::clip(waa::trim_blanks(m.substr(15)), 400));
        } else if (starts_with(m, "Step ")) {
            on_step(m.substr(5));
        } else if (starts_with(m, "Running evaluator")) {
            progressed();
            set_flag(evaluating_, true);
        } else if (starts_with(m, "Result: ")) {
            if (const auto value = waa::parse_number(m.substr(8))) on_result(*value);
        } else if (starts_with(m, "Finished ")) {
            if (const auto task = waa::domain_and_id(waa::trim_blanks(m.substr(9)))) {
                on_task_end(task->first, task->second, std::nullopt);
            }
        } else if (starts_with(m, "Exception in ") && on_task_exception(m.substr(13))) {
            // a failed task; any other "Exception in …" (a thread's) falls through to the ERROR check
        } else if (starts_with(m, "Average score: ")) {
            if (const auto value = waa::parse_number(m.substr(15))) finish_benchmark(value);
        } else if (starts_with(m, "No examples finished.")) {
            finish_benchmark(std::nullopt);
        } else if (starts_with(m, "Traceback (most recent call last)")) {
            on_traceback_start(prefixed, after_task_exception);
        } else if (starts_with(m, "Waiting for the server to start")) {
            progressed();  // run.py (re)starts
            set_text(server_note_, std::string());
            set_stage(Stage::waiting_for_server);
        } else if (starts_with(m, "Failed to get hello:")) {
            advance_stage(Stage::waiting_for_server);
            if (stage_ == Stage::waiting_for_server) set_text(server_note_, std::string(waa::trim_blanks(m.substr(20))));
        } else if (starts_with(m, "Response from server:") || starts_with(m, "Windows Agent Arena: Starting") ||
                   starts_with(m, "TESTING ON TASK JSON PATH:")) {
            saw_waa();
            advance_stage(Stage::starting);
        } else if (starts_with(m, "Interrupted by ")) {
            set_error(std::string(m));
        } else if (prefixed ? (level == "ERROR" || level == "CRITICAL") : starts_with(m, "ERROR:")) {
            set_error(std::string(m.empty() ? std::string_view("ERROR") : m));
        }
    }

    void start_task(std::string_view id) {
        progressed();
        auto it = tasks_.find(std::string(id));
        if (it != tasks_.end() && current_id_ == id && !it->second.finished) return;  // the same start twice
        anonymous_result_.reset();
        set_flag(evaluating_, false);
        set_step(0);
        set_text(last_action_, std::string());
        set_text(instruction_, std::string());
        advance_stage(Stage::running);
        if (it == tasks_.end()) {
            if (tasks_.size() >= max_tracked_tasks) tasks_.clear();
            Task task;
            task.index = ++started_;
            task.domain = pending_domain_;
            it = tasks_.emplace(std::string(id), std::move(task)).first;
        } else if (!pending_domain_.empty()) {
            it->second.domain = pending_domain_;
        }
        Task& task = it->second;
        const bool rerun = task.counted;
        task.finished = false;
        // Each run of a task was one entry of N, but N and tasks_done() count a task once.
        if (rerun && total_ > done_) set_total(total_ - 1);
        set_text(current_id_, std::string(id));
        set_text(domain_, task.domain);
        current_index_ = task.index;
        pending_domain_.clear();
        changed_ = true;
        WaaEvent event = make_event(WaaEventKind::task_started, task.index, task.domain, current_id_);
        event.rerun = rerun;
        push(std::move(event));
    }

    void on_step(std::string_view rest) {
        const std::size_t colon = rest.find(':');
        if (colon == std::string_view::npos) return;
        const auto number = detail::waa::parse_count(rest.substr(0, colon));
        if (!number) return;
        progressed();
        advance_stage(Stage::running);
        set_step(*number);
        set_text(last_action_, detail::waa::clip(detail::waa::trim_blanks(rest.substr(colon + 1)), 200));
    }

    void on_result(double value) {
        progressed();
        advance_stage(Stage::running);
        set_flag(evaluating_, false);
        if (last_result_ != value) {
            last_result_ = value;
            changed_ = true;
        }
        const auto it = current_id_.empty() ? tasks_.end() : tasks_.find(current_id_);
        if (it != tasks_.end() && !it->second.finished) {
            finish_task(it->first, it->second, value, std::nullopt);
            return;
        }
        // A Result whose task start is not in this log (it began before the log did).
        const bool success = value > 0;
        ++done_;
        ++(success ? successes_ : failures_);
        anonymous_result_ = AnonymousResult{++started_, success};
        changed_ = true;
        WaaEvent event = make_event(WaaEventKind::task_finished, started_, std::string(), std::string());
        event.result = value;
        event.success = success;
        push(std::move(event));
        raise_progress();
    }

    // `Finished domain/id` (error absent) or `Exception in domain/id: …` (error present).
    void on_task_end(std::string_view domain, std::string_view id, std::optional<std::string> error) {
        progressed();
        advance_stage(Stage::running);
        auto it = tasks_.find(std::string(id));
        if (it == tasks_.end()) {
            if (tasks_.size() >= max_tracked_tasks) tasks_.clear();
            Task task;
            task.domain = std::string(domain);
            if (anonymous_result_) {  // the Result printed just before belongs to this task
                task.index = anonymous_result_->index;
                task.counted = task.finished = true;
                task.success = anonymous_result_->success;
                task.result = last_result_;
                anonymous_result_.reset();
                tasks_.emplace(std::string(id), std::move(task));
                return;
            }
            task.index = ++started_;
            it = tasks_.emplace(std::string(id), std::move(task)).first;
        }
        if (it->second.domain.empty()) it->second.domain = std::string(domain);
        // Finished after its Result, or an exception after the result was written: the result stands.
        if (!it->second.finished) finish_task(it->first, it->second, std::nullopt, std::move(error));
    }

    bool on_task_exception(std::string_view rest) {
        const std::size_t colon = rest.find(": ");
        const std::string_view task = rest.substr(0, colon);
        const auto parts = detail::waa::domain_and_id(task);
        if (!parts) return false;
        std::string error = colon == std::string_view::npos ? std::string("exception")
                                                            : detail::waa::clip(rest.substr(colon + 2), 300);
        after_task_exception_ = true;
        on_task_end(parts->first, parts->second, std::move(error));
        return true;
    }

    void finish_task(const std::string& id, Task& task, std::optional<double> result, std::optional<std::string> error) {
        const bool success = result && *result > 0;
        const bool rerun = task.counted;
        if (rerun) {
            --(task.success ? successes_ : failures_);
        } else {
            ++done_;
            task.counted = true;
        }
        ++(success ? successes_ : failures_);
        task.finished = true;
        task.success = success;
        task.result = result;
        changed_ = true;
        WaaEvent event = make_event(WaaEventKind::task_finished, task.index, task.domain, id);
        event.result = result;
        event.success = success;
        event.rerun = rerun;
        event.error = std::move(error);
        push(std::move(event));
        raise_progress();
    }

    void finish_benchmark(std::optional<double> average) {
        progressed();
        saw_waa();
        if (average_ != average) {
            average_ = average;
            changed_ = true;
        }
        advance_stage(Stage::finished);
        WaaEvent event = make_event(WaaEventKind::benchmark_finished, 0, std::string(), std::string());
        event.average_score = average;
        push(std::move(event));
        raise_progress();
    }

    void on_traceback_start(bool prefixed, bool after_task_exception) {
        if (prefixed && after_task_exception) {
            traceback_ = Traceback::of_task;  // already counted as the task's failure
            return;
        }
        traceback_ = prefixed ? Traceback::logged : Traceback::bare;
        set_error("Traceback (most recent call last)");
    }

    // An unprefixed line while a traceback is open; true when it belonged to the traceback.
    bool continue_traceback(std::string_view m) {
        using detail::waa::starts_with;
        if (m.empty() || m.front() == ' ' || m.front() == '\t' || m.front() == '^' ||
            starts_with(m, "Traceback (most recent call last)") || starts_with(m, "During handling of the above") ||
            starts_with(m, "The above exception was")) {
            return true;
        }
        // The exception line closes the traceback (a chained one may open again).
        if (traceback_ != Traceback::of_task) set_error(detail::waa::clip(m, 500));
        traceback_ = Traceback::none;
        return true;
    }

    std::string running_detail() const {
        std::string text = "Task " + std::to_string(current_index_ > 0 ? current_index_ : done_);
        if (total_ > 0) text += " of " + std::to_string(total_);
        if (!domain_.empty()) text += " (" + domain_ + ")";
        const auto it = current_id_.empty() ? tasks_.end() : tasks_.find(current_id_);
        if (it != tasks_.end() && it->second.finished) {
            text += ": finished, ";
            text += it->second.success ? "success" : "failure";
            if (it->second.result) text += " (result " + detail::waa::format_score(*it->second.result) + ")";
        } else if (evaluating_) {
            text += ": running evaluator";
        } else if (agent_step_ > 0) {
            text += ": step " + std::to_string(agent_step_);
            if (!last_action_.empty()) text += ", " + last_action_;
        } else if (!instruction_.empty()) {
            text += ": " + instruction_;
        }
        return text;
    }

    WaaEvent make_event(WaaEventKind kind, int index, std::string domain, std::string id) const {
        WaaEvent event;
        event.kind = kind;
        event.task_index = index;
        event.total_tasks = total_;
        event.domain = std::move(domain);
        event.task_id = std::move(id);
        event.log_time = log_time_;
        event.log_seconds = log_seconds_;
        return event;
    }

    void push(WaaEvent event) {
        if (events_.size() >= max_pending_events) events_.pop_front();
        events_.push_back(std::move(event));
        changed_ = true;
    }

    // Any sign that the benchmark moves on clears an earlier error: it did not end the run.
    void progressed() {
        saw_waa();
        if (error_) {
            error_.reset();
            changed_ = true;
        }
    }

    void saw_waa() {
        if (!is_waa_log_) {
            is_waa_log_ = true;
            changed_ = true;
        }
    }

    // Within one run.py the stage only moves forward; a new run.py sets it back with set_stage.
    void advance_stage(Stage next) {
        if (static_cast<int>(next) > static_cast<int>(stage_)) set_stage(next);
    }

    void set_stage(Stage next) {
        if (stage_ != next) {
            stage_ = next;
            changed_ = true;
        }
    }

    // Progress follows N only once N is whole (see end_left_block), never a block's partial sum.
    void set_total(int total) {
        if (total_ != total) {
            total_ = total;
            changed_ = true;
        }
    }

    void end_left_block() {
        in_left_block_ = false;
        raise_progress();
    }

    void set_step(int step) {
        if (agent_step_ != step) {
            agent_step_ = step;
            changed_ = true;
        }
    }

    void set_flag(bool& flag, bool value) {
        if (flag != value) {
            flag = value;
            changed_ = true;
        }
    }

    void set_text(std::string& field, std::string value) {
        if (field != value) {
            field = std::move(value);
            changed_ = true;
        }
    }

    void set_error(std::string message) {
        if (error_ != message) {
            error_ = std::move(message);
            changed_ = true;
        }
    }

    void raise_progress() {
        double value = 0;
        if (stage_ == Stage::finished) {
            value = 1.0;
        } else if (total_ > 0) {
            value = done_ >= total_ ? 1.0 : static_cast<double>(done_) / total_;
        }
        if (value > progress_) {
            progress_ = value;
            changed_ = true;
        }
    }

    static int cap_add(int a, int b) noexcept { return a > 1000000000 - b ? 1000000000 : a + b; }

    Stage stage_ = Stage::waiting;
    Traceback traceback_ = Traceback::none;
    bool changed_ = false;
    bool is_waa_log_ = false;
    bool in_left_block_ = false;
    bool after_task_exception_ = false;
    bool evaluating_ = false;
    int block_base_ = 0;
    int left_sum_ = 0;
    int total_ = 0;
    int done_ = 0;
    int started_ = 0;
    int successes_ = 0;
    int failures_ = 0;
    int agent_step_ = 0;
    int current_index_ = 0;
    double progress_ = 0.0;
    std::optional<double> average_;
    std::optional<double> last_result_;
    struct AnonymousResult {
        int index = 0;
        bool success = false;
    };
    std::optional<AnonymousResult> anonymous_result_;  // a Result not yet tied to a task id
    std::optional<std::string> error_;
    std::string domain_;
    std::string pending_domain_;
    std::string current_id_;
    std::string instruction_;
    std::string last_action_;
    std::string server_note_;
    std::string log_time_;
    std::optional<double> log_seconds_;
    std::unordered_map<std::string, Task> tasks_;
    std::deque<WaaEvent> events_;
};

}  // namespace azops
// #include <azops/waa_parser.hpp> — end
// #include <azops/cost.hpp> — begin
// azops/cost.hpp — what the VM costs: hourly rates and billing by VM state over time.
//
// Owns: `VmState` (Azure power states) with its words, `RateTable` (a built-in eastus table, JSON
// override files, saved Azure Retail Prices API pages, manual rates) and `CostModel` (compute cost
// accrued so far, between two times and projected to the end of the task, under DESIGN.md's
// billing rule). Times are seconds on any monotonic clock the caller chooses.
// Thread-safety: plain values; a const object may be read from several threads, a changing one
// needs the caller's lock (the Tracker's).
// Errors: loading an override file or a saved price page throws std::runtime_error with a message
// naming the file and the problem (setup time, before the task runs); `RateTable::add` throws
// std::invalid_argument for a negative rate. Nothing else throws except std::bad_alloc. An unknown
// size is never billed at $0: its rate is std::nullopt and `rate_message()` says how to give one.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>


namespace azops {

// Azure's power states (PowerState/<word> in `az vm get-instance-view`).
// `absent`: Azure says the VM does not exist (not yet created, a create that failed, deleted).
enum class VmState { running, starting, stopping, stopped, deallocating, deallocated, absent, unknown };

inline std::string_view to_string(VmState state) noexcept {
    switch (state) {
        case VmState::running: return "running";
        case VmState::starting: return "starting";
        case VmState::stopping: return "stopping";
        case VmState::stopped: return "stopped";
        case VmState::deallocating: return "deallocating";
        case VmState::deallocated: return "deallocated";
        case VmState::absent: return "absent";
        case VmState::unknown: break;
    }
    return "unknown";
}

namespace detail::cost {

using text::contains;
using text::starts_with;

inline std::string lower_trimmed(std::string_view s) { return text::lower_ascii(text::trim_space(s)); }

}  // namespace detail::cost

// Reads the state in any of the forms `az` prints: "running", "PowerState/running", "VM running"
// (`az vm show -d`), "Stopped (deallocated)" (the portal). Anything else is `unknown`.
inline VmState parse_vm_state(std::string_view text) {
    std::string word = detail::cost::lower_trimmed(text);
    if (detail::cost::starts_with(word, "powerstate/")) word.erase(0, 11);
    if (detail::cost::starts_with(word, "vm ")) word.erase(0, 3);
    if (detail::cost::contains(word, "(deallocated)")) return VmState::deallocated;
    if (detail::cost::contains(word, "(allocated)")) return VmState::stopped;
    static constexpr std::array all{VmState::running, VmState::starting,     VmState::stopping,
                                    VmState::stopped, VmState::deallocating, VmState::deallocated,
                                    VmState::absent};
    for (VmState s : all) {
        if (word == to_string(s)) return s;
    }
    return VmState::unknown;
}

// DESIGN.md, "Billing rule": compute is charged while the VM is allocated. An unknown state is
// charged too: the page then says the cost assumes the VM runs. A VM that does not exist costs nothing.
inline bool is_billed(VmState state) noexcept {
    return state != VmState::deallocating && state != VmState::deallocated && state != VmState::absent;
}

// `linux` is a predefined macro in GNU dialects (-std=gnu++17, CMake's default), so it cannot be
// an enumerator name.
enum class OsType { linux_os, windows_os };

inline std::string_view to_string(OsType os) noexcept { return os == OsType::windows_os ? "windows" : "linux"; }

inline std::optional<OsType> parse_os_type(std::string_view text) {
    const std::string word = detail::cost::lower_trimmed(text);
    if (word == "linux") return OsType::linux_os;
    if (word == "windows") return OsType::windows_os;
    return std::nullopt;
}

inline constexpr std::string_view default_region = "eastus";

// Saves the pay-as-you-go prices of one size in eastus as one page of the Azure Retail Prices API
// (no account needed); load it with RateTable::load_retail_prices:
//
//   curl -fsS -o prices/eastus-Standard_D4ds_v5.json "https://prices.azure.com/api/retail/prices?\$filter=serviceName%20eq%20'Virtual%20Machines'%20and%20armRegionName%20eq%20'eastus'%20and%20armSkuName%20eq%20'Standard_D4ds_v5'"
//
// A wider filter (a whole region) answers in pages of 100 items; save each page to its own file by
// following NextPageLink:
//
//   u="https://prices.azure.com/api/retail/prices?\$filter=serviceName%20eq%20'Virtual%20Machines'%20and%20armRegionName%20eq%20'eastus'%20and%20priceType%20eq%20'Consumption'"; n=1; while [ -n "$u" ]; do curl -fsS -o "prices/eastus-$n.json" "$u" || break; u=$(grep -o '"NextPageLink": *"[^"]*"' "prices/eastus-$n.json" | cut -d'"' -f4 | sed 's/ /%20/g'); n=$((n+1)); done

// Where a rate came from, and whether there is one at all.
struct RateQuote {
    std::string vm_size;
    OsType os = OsType::linux_os;
    std::string region;
    std::optional<double> usd_per_hour;  // nullopt: the rate is unknown, never guessed as 0
    std::string source;                  // e.g. "built-in table eastus linux 2026-11"
    std::string message;                 // when unknown: what is missing and how to provide it
};

namespace detail::cost {

// "Standard_D4ds_v5", "standard_d4ds_v5" and "D4ds_v5" all name one size.
inline std::string size_key(std::string_view size) {
    std::string key = lower_trimmed(size);
    if (!key.empty() && !starts_with(key, "standard_") && !starts_with(key, "basic_")) key = "standard_" + key;
    return key;
}

inline std::string region_key(std::string_view region) {
    std::string key = lower_trimmed(region);
    key.erase(std::remove(key.begin(), key.end(), ' '), key.end());
    return key;
}

struct BuiltInRate {
    std::string_view size;
    double linux_usd;
    double windows_usd;
};

// Pay-as-you-go list prices, USD per hour, region eastus, as public Azure price tables
// (azure.microsoft.com pricing pages, Retail Prices API listings) give them; table written
// 2026-11-29, without a live check against the API. Standard_D4ds_v5 0.226 and Standard_D8ds_v5
// 0.452 (Linux) agree across two independent tables; public tables disagree elsewhere (the original
// specification used 0.422 $/h for D4ds_v5; one table gives D4ads_v5 0.201), so RateQuote::source
// always says which table a figure came from, and saved API pages or an override file replace it.
// Windows prices add the Windows Server licence, 0.046 $ per vCPU-hour, to the Linux price.
inline constexpr std::string_view built_in_date = "2026-11";
inline constexpr std::array<BuiltInRate, 15> built_in_eastus{{
    {"Standard_D2ds_v5", 0.113, 0.205},  {"Standard_D4ds_v5", 0.226, 0.410},
    {"Standard_D8ds_v5", 0.452, 0.820},  {"Standard_D16ds_v5", 0.904, 1.640},
    {"Standard_D32ds_v5", 1.808, 3.280}, {"Standard_D2ads_v5", 0.103, 0.195},
    {"Standard_D4ads_v5", 0.206, 0.390}, {"Standard_D8ads_v5", 0.412, 0.780},
    {"Standard_D16ads_v5", 0.824, 1.560}, {"Standard_D32ads_v5", 1.648, 3.120},
    {"Standard_D2s_v3", 0.096, 0.188},   {"Standard_D4s_v3", 0.192, 0.376},
    {"Standard_D8s_v3", 0.384, 0.752},   {"Standard_D16s_v3", 0.768, 1.504},
    {"Standard_D32s_v3", 1.536, 3.008},
}};
static_assert(!built_in_eastus.back().size.empty(), "built_in_eastus: its size names more rows than it has");

inline std::string read_text_file(const std::filesystem::path& path, std::string_view what) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        throw std::runtime_error(std::string(what) + " " + path.string() + " does not exist");
    }
    if (std::filesystem::is_directory(path, ec)) {
        throw std::runtime_error(std::string(what) + " " + path.string() + " is a folder, not a file");
    }
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in || in.bad()) throw std::runtime_error("cannot read " + std::string(what) + " " + path.string());
    return text.str();
}

inline nlohmann::json parse_json_file(const std::filesystem::path& path, std::string_view what) {
    const std::string text = read_text_file(path, what);
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw std::runtime_error(std::string(what) + " " + path.string() + " is not valid JSON: " + e.what());
    }
}

inline const std::string* string_field(const nlohmann::json& object, const char* key) {
    const auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

inline std::optional<double> number_field(const nlohmann::json& object, const char* key) {
    const auto it = object.find(key);
    if (it == object.end() || !it->is_number()) return std::nullopt;
    const double value = it->get<double>();
    return std::isfinite(value) ? std::optional<double>(value) : std::nullopt;
}

}  // namespace detail::cost

// Hourly rates by (size, OS, region). Later additions win over earlier ones, so an override file
// loaded after the built-in table replaces its figures.
class RateTable {
public:
    RateTable() = default;

    // The built-in eastus table (see detail::cost::built_in_eastus for the source and date).
    static RateTable built_in() {
        RateTable table;
        const std::string base = "built-in table " + std::string(default_region) + " ";
        for (const auto& r : detail::cost::built_in_eastus) {
            table.add(r.size, OsType::linux_os, default_region, r.linux_usd,
                      base + "linux " + std::string(detail::cost::built_in_date));
            table.add(r.size, OsType::windows_os, default_region, r.windows_usd,
                      base + "windows " + std::string(detail::cost::built_in_date));
        }
        return table;
    }

    // One rate. An absent `os` or `region` matches every OS or region. Throws
    // std::invalid_argument for a negative or non-finite rate.
    void add(std::string_view vm_size, std::optional<OsType> os, std::optional<std::string_view> region,
             double usd_per_hour, std::string source) {
        if (!std::isfinite(usd_per_hour) || usd_per_hour < 0) {
            throw std::invalid_argument("hourly rate for " + std::string(vm_size) + " must be a non-negative number");
        }
        Entry e;
        e.size = detail::cost::size_key(vm_size);
        e.os = os;
        if (region) e.region = detail::cost::region_key(*region);
        e.usd_per_hour = usd_per_hour;
        e.source = std::move(source);
        entries_.push_back(std::move(e));
    }

    // An override file:
    //   {"rates": [{"vm_size": "Standard_D4ds_v5", "usd_per_hour": 0.422},
    //              {"vm_size": "Standard_D8ds_v5", "usd_per_hour": 0.844, "os": "linux", "region": "eastus"}]}
    // `os` and `region` are optional (absent: every OS / region). Throws std::runtime_error naming
    // the file and the entry when the file is missing, is not JSON or has the wrong shape; then
    // nothing of the file has been added.
    void load_override_file(const std::filesystem::path& path) {
        load_override_json(detail::cost::parse_json_file(path, "rate override file"), "override file " + path.string());
    }

    // The same from a parsed document; `origin` names it in sources and messages.
    void load_override_json(const nlohmann::json& doc, const std::string& origin) {
        const auto fail = [&](const std::string& why) { throw std::runtime_error("rate " + origin + ": " + why); };
        if (!doc.is_object() || !doc.contains("rates") || !doc["rates"].is_array()) {
            fail(R"(expected {"rates": [{"vm_size": "Standard_D4ds_v5", "usd_per_hour": 0.226}, ...]})");
        }
        RateTable parsed;
        std::size_t index = 0;
        for (const auto& item : doc["rates"]) {
            const std::string where = "rates[" + std::to_string(index++) + "]";
            if (!item.is_object()) fail(where + " is not an object");
            const std::string* size = detail::cost::string_field(item, "vm_size");
            if (size == nullptr || size->empty()) fail(where + ": \"vm_size\" must be a non-empty string");
            const auto usd = detail::cost::number_field(item, "usd_per_hour");
            if (!usd || *usd < 0) fail(where + ": \"usd_per_hour\" must be a non-negative number");
            std::optional<OsType> os;
            if (item.contains("os")) {
                const std::string* word = detail::cost::string_field(item, "os");
                if (word != nullptr) os = parse_os_type(*word);
                if (!os) fail(where + R"(: "os" must be "linux" or "windows")");
            }
            std::optional<std::string_view> region;
            if (item.contains("region")) {
                const std::string* name = detail::cost::string_field(item, "region");
                if (name == nullptr || name->empty()) fail(where + ": \"region\" must be a non-empty string");
                region = *name;
            }
            parsed.add(*size, os, region, *usd, origin);
        }
        append(parsed);
    }

    // Saved pages of the Azure Retail Prices API (`{"Items": [...], "NextPageLink": ...}`), one file
    // per page. Of each size, region and OS it keeps the pay-as-you-go price: type "Consumption"
    // (not "DevTestConsumption" or "Reservation", whose retailPrice is the whole term), per
    // "1 Hour", not Spot or Low Priority, preferring the primary meter region and then the latest
    // effectiveStartDate. Windows is told by "Windows" in productName. Returns how many rates it
    // took. Throws std::runtime_error when a file is missing, not JSON, or has no Items array.
    std::size_t load_retail_prices(const std::vector<std::filesystem::path>& pages) {
        std::map<std::tuple<std::string, OsType, std::string>, Candidate> best;
        for (const auto& page : pages) {
            const nlohmann::json doc = detail::cost::parse_json_file(page, "price page");
            collect_retail_prices(doc, page.filename().string(), best);
        }
        RateTable parsed;
        for (const auto& [key, c] : best) {
            std::string source = "Azure Retail Prices API (saved) " + c.file;
            if (!c.effective.empty()) source += ", effective " + c.effective.substr(0, 10);
            parsed.add(std::get<0>(key), std::get<1>(key), std::get<2>(key), c.usd, std::move(source));
        }
        append(parsed);
        return best.size();
    }

    // The rate for a VM. Where the table has the size but not the region, the default region's
    // price is used and the source says so (Dv5 prices are the same in most US regions, not in all).
    RateQuote quote(std::string_view vm_size, OsType os = OsType::linux_os,
                    std::string_view region = default_region) const {
        RateQuote q;
        q.vm_size = std::string(vm_size);
        q.os = os;
        q.region = detail::cost::region_key(region);
        const std::string size = detail::cost::size_key(vm_size);
        if (const Entry* e = find(size, os, q.region)) {
            q.usd_per_hour = e->usd_per_hour;
            q.source = e->source;
            return q;
        }
        if (const Entry* e = find(size, os, std::string(default_region))) {
            q.usd_per_hour = e->usd_per_hour;
            q.source = e->source + " (no " + q.region + " price; " + std::string(default_region) + "'s used)";
            return q;
        }
        q.source = "unknown";
        q.message = "no hourly rate for " + (vm_size.empty() ? std::string("an unnamed VM size") : q.vm_size) +
                    " (" + std::string(to_string(os)) + ", " + q.region +
                    R"(): give one in a rate override file ({"rates": [{"vm_size": ")" + q.vm_size +
                    R"(", "usd_per_hour": ...}]}) or load saved Azure Retail Prices API pages)";
        return q;
    }

    std::size_t size() const noexcept { return entries_.size(); }

private:
    struct Entry {
        std::string size;
        std::optional<OsType> os;
        std::optional<std::string> region;
        double usd_per_hour = 0;
        std::string source;
    };

    struct Candidate {
        double usd = 0;
        bool primary = false;
        std::string effective;
        std::string file;
    };

    const Entry* find(const std::string& size, OsType os, const std::string& region) const {
        for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
            if (it->size == size && (!it->os || *it->os == os) && (!it->region || *it->region == region)) return &*it;
        }
        return nullptr;
    }

    void append(const RateTable& other) {
        entries_.insert(entries_.end(), other.entries_.begin(), other.entries_.end());
    }

    static void collect_retail_prices(const nlohmann::json& doc, const std::string& file,
                                      std::map<std::tuple<std::string, OsType, std::string>, Candidate>& best) {
        if (!doc.is_object() || !doc.contains("Items") || !doc["Items"].is_array()) {
            throw std::runtime_error("price page " + file +
                                     " is not an Azure Retail Prices API response (no \"Items\" array)");
        }
        for (const auto& item : doc["Items"]) {
            if (!item.is_object()) continue;
            const auto text = [&](const char* key) {
                const std::string* s = detail::cost::string_field(item, key);
                return s != nullptr ? *s : std::string();
            };
            const std::string service = text("serviceName");
            if (!service.empty() && service != "Virtual Machines") continue;
            if (text("type") != "Consumption" || text("unitOfMeasure") != "1 Hour") continue;
            const std::string product = text("productName");
            const std::string meter = text("meterName") + " " + text("skuName") + " " + product;
            if (detail::cost::contains(meter, "Spot") || detail::cost::contains(meter, "Low Priority")) continue;
            const std::string sku = text("armSkuName");
            const std::string region = text("armRegionName");
            const auto usd = detail::cost::number_field(item, "retailPrice");
            if (sku.empty() || region.empty() || !usd || *usd <= 0) continue;
            Candidate c;
            c.usd = *usd;
            const auto primary = item.find("isPrimaryMeterRegion");
            c.primary = primary == item.end() || !primary->is_boolean() || primary->get<bool>();
            c.effective = text("effectiveStartDate");
            c.file = file;
            const OsType os = detail::cost::contains(product, "Windows") ? OsType::windows_os : OsType::linux_os;
            const auto key = std::make_tuple(detail::cost::size_key(sku), os, detail::cost::region_key(region));
            const auto found = best.find(key);
            if (found == best.end() || std::make_pair(c.primary, c.effective) >
                                           std::make_pair(found->second.primary, found->second.effective)) {
                best[key] = std::move(c);
            }
        }
    }

    std::vector<Entry> entries_;
};

// Compute cost of one VM over the task. The state timeline starts at the first `set_state`: call
// `set_state(VmState::unknown, start)` when the task starts and the state is not known yet.
class CostModel {
public:
    // No VM yet: the rate is unknown until `set_rate`.
    CostModel() { rate_.source = "unknown"; rate_.message = "no VM size given yet"; }

    explicit CostModel(RateQuote rate) : rate_(std::move(rate)) {}

    explicit CostModel(std::string_view vm_size, OsType os = OsType::linux_os,
                       std::string_view region = default_region, const RateTable& rates = RateTable::built_in())
        : rate_(rates.quote(vm_size, os, region)) {}

    // A rate found later (the size became known) applies to the whole timeline: the VM's price did
    // not change, only our knowledge of it.
    void set_rate(RateQuote rate) { rate_ = std::move(rate); }

    // A rate given by hand, e.g. the original specification's 0.422 $/h for Standard_D4ds_v5.
    void set_rate_override(double usd_per_hour, std::string source = "manual") {
        rate_.usd_per_hour = std::isfinite(usd_per_hour) && usd_per_hour >= 0 ? std::optional<double>(usd_per_hour)
                                                                                : std::nullopt;
        rate_.source = rate_.usd_per_hour ? std::move(source) : "unknown";
        rate_.message = rate_.usd_per_hour ? "" : "the manual rate was not a non-negative number";
    }

    const RateQuote& rate() const noexcept { return rate_; }
    std::optional<double> hourly_rate() const noexcept { return rate_.usd_per_hour; }
    bool rate_known() const noexcept { return rate_.usd_per_hour.has_value(); }
    const std::string& rate_source() const noexcept { return rate_.source; }
    const std::string& rate_message() const noexcept { return rate_.message; }

    // The VM is in `state` from time `t` on. Times earlier than the last change are taken as the
    // last change (a monotonic clock never goes back; a confused caller must not un-bill time).
    void set_state(VmState state, double t) {
        if (!changes_.empty()) {
            t = std::max(t, changes_.back().t);
            if (changes_.back().state == state) return;
            if (changes_.back().t == t) {
                changes_.back().state = state;
                merge_tail();
                return;
            }
        }
        changes_.push_back({t, state});
    }

    VmState state() const noexcept { return changes_.empty() ? VmState::unknown : changes_.back().state; }

    // True when some billed time so far (up to the last change, or now) was billed only because
    // the state was unknown: the page then says the cost assumes the VM was running.
    bool billing_assumed() const noexcept {
        return changes_.empty() || std::any_of(changes_.begin(), changes_.end(),
                                               [](const Change& c) { return c.state == VmState::unknown; });
    }

    // Seconds billed between `from` and `to` (clamped to the timeline).
    double billed_seconds(double from, double to) const noexcept {
        double total = 0;
        for (std::size_t i = 0; i < changes_.size(); ++i) {
            if (!is_billed(changes_[i].state)) continue;
            const double begin = std::max(from, changes_[i].t);
            const double end = std::min(to, i + 1 < changes_.size() ? changes_[i + 1].t : to);
            if (end > begin) total += end - begin;
        }
        return total;
    }

    std::optional<double> cost_between(double from, double to) const noexcept {
        if (!rate_.usd_per_hour) return std::nullopt;
        return billed_seconds(from, to) * *rate_.usd_per_hour / 3600.0;
    }

    // Cost accrued from the first state change until `t`.
    std::optional<double> cost_until(double t) const noexcept {
        if (changes_.empty()) return rate_.usd_per_hour ? std::optional<double>(0.0) : std::nullopt;
        return cost_between(changes_.front().t, t);
    }

    // Cost so far plus the remaining time at the rate, if the VM is billed now (a deallocated VM
    // costs nothing more while it stays so). nullopt without a rate or without an ETA.
    std::optional<double> projected_cost(double now, std::optional<double> eta_seconds) const noexcept {
        const auto so_far = cost_until(now);
        if (!so_far || !eta_seconds) return std::nullopt;
        const double ahead = is_billed(state()) ? std::max(0.0, *eta_seconds) : 0.0;
        return *so_far + ahead * *rate_.usd_per_hour / 3600.0;
    }

private:
    struct Change {
        double t;
        VmState state;
    };

    // After an in-place correction the last change may now repeat the one before it.
    void merge_tail() {
        if (changes_.size() >= 2 && changes_[changes_.size() - 2].state == changes_.back().state) changes_.pop_back();
    }

    RateQuote rate_;
    std::vector<Change> changes_;
};

}  // namespace azops
// #include <azops/cost.hpp> — end
// #include <azops/history.hpp> — begin
// azops/history.hpp — past durations per operation and per step (`azure_ops_history.json`).
//
// Owns: azops::History, the file's in-memory form, and the locked read-merge-write that lets
// several processes record into one file at once without losing a sample. The file keeps the
// original shape, `{"docker_build": {"avg_seconds": 1200, "samples": 5}, ...}`; azops adds
// `recent_seconds` (last durations, oldest first) and `recent_runs` (last runs' seconds per step
// and which steps came from the build cache) inside an entry and keeps every key it does not know.
// Thread-safety: a History is a plain value. The static `*_to_file` functions may run at once in
// any number of threads and processes: they serialise on flock(2) of `<file>.lock`.
// Errors: nothing here throws on bad content. An unreadable or corrupt file reads as empty history
// with a warning; before the next write the corrupt file is renamed to
// `<file>.corrupt-<UTC time>`, never overwritten. File functions report failures in their result.

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>


namespace azops {

// The entry the original specification keeps for one benchmark task.
inline constexpr std::string_view benchmark_task_key = "benchmark_per_task";

// One finished run of an operation.
struct PastRun {
    std::vector<double> step_seconds;  // seconds per step, in order
    std::vector<int> cached_steps;     // 1-based numbers of the steps taken from the build cache

    bool cached(int step) const noexcept {
        return std::find(cached_steps.begin(), cached_steps.end(), step) != cached_steps.end();
    }
    double total_seconds() const noexcept {
        double total = 0;
        for (double s : step_seconds) total += s;
        return total;
    }
};

// What the file says about one operation; fields the file lacks or has wrong are left empty.
struct OperationHistory {
    std::optional<double> avg_seconds;   // running mean of all samples (original key)
    std::int64_t samples = 0;            // how many (original key)
    std::vector<double> recent_seconds;  // last durations (whole runs, or single tasks), oldest first
    std::vector<PastRun> recent_runs;    // last runs with their steps, oldest first
};

struct HistoryFileResult {
    bool ok = false;
    std::string error;                                // why nothing was written
    std::vector<std::string> warnings;                // what was wrong with the file, and what was done about it
    std::optional<std::filesystem::path> moved_aside;  // where a corrupt file was renamed to
};

namespace detail::history {

// nlohmann's parser is iterative, but dumping and destroying values recurse; a file nested
// deeper than any history needs is refused before it is parsed.
inline bool nesting_deeper_than(std::string_view text, int limit) noexcept {
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') ++i;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > limit) return true;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return false;
}

// 0 and the text, or the errno of the failure (ENOENT when there is no file).
inline int read_whole_file(const std::filesystem::path& path, std::string& out) {
    out.clear();
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    std::array<char, 65536> buf;
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            ::close(fd);
            return err;
        }
        out.append(buf.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return 0;
}

inline std::optional<double> seconds_value(const nlohmann::json& v) {
    if (!v.is_number()) return std::nullopt;
    const double d = v.get<double>();
    return std::isfinite(d) && d >= 0 ? std::optional<double>(d) : std::nullopt;
}

inline std::optional<std::int64_t> count_value(const nlohmann::json& v) {
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        return u <= static_cast<std::uint64_t>(INT64_MAX) ? std::optional<std::int64_t>(static_cast<std::int64_t>(u))
                                                          : std::nullopt;
    }
    if (v.is_number_integer()) {
        const auto i = v.get<std::int64_t>();
        return i >= 0 ? std::optional<std::int64_t>(i) : std::nullopt;
    }
    if (v.is_number_float()) {
        const double d = v.get<double>();
        if (std::isfinite(d) && d >= 0 && d < 9e15 && d == std::floor(d)) return static_cast<std::int64_t>(d);
    }
    return std::nullopt;
}

inline std::optional<std::vector<double>> seconds_array(const nlohmann::json& v) {
    if (!v.is_array()) return std::nullopt;
    std::vector<double> out;
    for (const auto& x : v) {
        const auto s = seconds_value(x);
        if (!s) return std::nullopt;
        out.push_back(*s);
    }
    return out;
}

inline std::optional<PastRun> past_run(const nlohmann::json& v) {
    if (!v.is_object() || !v.contains("steps")) return std::nullopt;
    auto steps = seconds_array(v["steps"]);
    if (!steps || steps->empty()) return std::nullopt;
    PastRun run;
    run.step_seconds = std::move(*steps);
    if (v.contains("cached")) {
        if (!v["cached"].is_array()) return std::nullopt;
        for (const auto& s : v["cached"]) {
            const auto n = count_value(s);
            if (!n || *n < 1 || *n > static_cast<std::int64_t>(run.step_seconds.size())) return std::nullopt;
            run.cached_steps.push_back(static_cast<int>(*n));
        }
    }
    return run;
}

// Reads one entry, noting in `warnings` (when given) every part it had to ignore.
inline OperationHistory read_entry(const nlohmann::json& entry, const std::string& op,
                                   std::vector<std::string>* warnings) {
    OperationHistory out;
    const auto warn = [&](const std::string& what) {
        if (warnings != nullptr) warnings->push_back("history entry \"" + op + "\": " + what);
    };
    if (!entry.is_object()) {
        warn("is not an object; ignored");
        return out;
    }
    const auto avg = entry.contains("avg_seconds") ? seconds_value(entry["avg_seconds"]) : std::nullopt;
    const auto samples = entry.contains("samples") ? count_value(entry["samples"]) : std::nullopt;
    if (avg && samples && *samples > 0) {
        out.avg_seconds = avg;
        out.samples = *samples;
    } else if (entry.contains("avg_seconds") || entry.contains("samples")) {
        warn("avg_seconds/samples are not a non-negative number and a positive count; ignored");
    }
    if (entry.contains("recent_seconds")) {
        if (auto list = seconds_array(entry["recent_seconds"])) out.recent_seconds = std::move(*list);
        else warn("recent_seconds is not a list of non-negative numbers; ignored");
    }
    if (entry.contains("recent_runs")) {
        const auto& runs = entry["recent_runs"];
        bool bad = !runs.is_array();
        if (!bad) {
            for (const auto& r : runs) {
                if (auto run = past_run(r)) out.recent_runs.push_back(std::move(*run));
                else bad = true;
            }
        }
        if (bad) warn(R"(some recent_runs are not {"steps": [seconds...], "cached": [step numbers]}; ignored)");
    }
    return out;
}

inline std::string utc_stamp(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm utc{};
    gmtime_r(&secs, &utc);
    std::array<char, 32> buf{};
    const std::size_t length = std::strftime(buf.data(), buf.size(), "%Y%m%dT%H%M%SZ", &utc);
    return {buf.data(), length};
}

// Holds an flock(2) on the sidecar lock file for as long as it lives. The lock is on a separate
// file because the history file itself is replaced by rename: a lock on its old inode would not
// exclude a writer that opened the new one.
class FileLock {
public:
    explicit FileLock(const std::filesystem::path& lock_path) {
        fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) {
            error_ = errno_text("cannot open lock file", lock_path, errno);
            return;
        }
        while (::flock(fd_, LOCK_EX) != 0) {
            if (errno == EINTR) continue;
            error_ = errno_text("cannot lock", lock_path, errno);
            ::close(fd_);
            fd_ = -1;
            return;
        }
    }
    ~FileLock() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

    bool locked() const noexcept { return fd_ >= 0; }
    const std::string& error() const noexcept { return error_; }

private:
    int fd_ = -1;
    std::string error_;
};

}  // namespace detail::history

class History {
public:
    static constexpr std::size_t max_recent_seconds = 100;
    static constexpr std::size_t max_recent_runs = 20;
    static constexpr int max_nesting = 64;

    History() = default;

    // The file at `path`; no file is empty history. Never throws on content and never changes the
    // file: a corrupt one reads as empty, with a warning, and is moved aside by the next write.
    static History load(const std::filesystem::path& path) {
        std::string text;
        const int err = detail::history::read_whole_file(path, text);
        if (err == ENOENT) return {};
        if (err != 0) {
            History h;
            h.warnings_.push_back(detail::errno_text("cannot read history file", path, err) + "; no history used");
            return h;
        }
        return parse(text, path.string());
    }

    // The same from text; `origin` names it in warnings.
    static History parse(std::string_view text, const std::string& origin = "history") {
        History h;
        if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
            h.warnings_.push_back(origin + " is empty; treated as no history");
            return h;
        }
        if (detail::history::nesting_deeper_than(text, max_nesting)) {
            h.mark_corrupt(origin, "is nested more than " + std::to_string(max_nesting) + " levels deep");
            return h;
        }
        nlohmann::json doc;
        try {
            doc = nlohmann::json::parse(text);
        } catch (const nlohmann::json::parse_error& e) {
            h.mark_corrupt(origin, std::string("is not valid JSON (") + e.what() + ")");
            return h;
        }
        if (!doc.is_object()) {
            h.mark_corrupt(origin, "is not a JSON object of operations");
            return h;
        }
        h.doc_ = std::move(doc);
        for (const auto& [op, entry] : h.doc_.items()) detail::history::read_entry(entry, op, &h.warnings_);
        return h;
    }

    // One finished run: seconds per step in order, and the 1-based numbers of the steps that came
    // from the build cache. avg_seconds/samples become the running mean of whole-run seconds.
    // Returns false (and a warning) and records nothing when a duration is negative or not finite.
    bool record(std::string_view op, const std::vector<double>& step_seconds,
                const std::vector<int>& cached_steps = {}) {
        const std::string name(op);
        const auto bad = [](double s) { return !std::isfinite(s) || s < 0; };
        if (step_seconds.empty() || std::any_of(step_seconds.begin(), step_seconds.end(), bad)) {
            warnings_.push_back("not recorded for \"" + name + "\": step durations must be non-negative numbers");
            return false;
        }
        nlohmann::json& entry = writable_entry(name);
        nlohmann::json run = {{"steps", step_seconds}};
        std::vector<int> cached;
        for (int s : cached_steps) {
            if (s >= 1 && s <= static_cast<int>(step_seconds.size())) cached.push_back(s);
        }
        std::sort(cached.begin(), cached.end());
        cached.erase(std::unique(cached.begin(), cached.end()), cached.end());
        if (!cached.empty()) run["cached"] = cached;
        push_recent(entry, "recent_runs", std::move(run), max_recent_runs);
        double total = 0;
        for (double s : step_seconds) total += s;
        add_sample(entry, name, total);
        return true;
    }

    // One sample without steps, e.g. one benchmark task under `benchmark_task_key`.
    bool record_task(std::string_view op, double seconds) {
        const std::string name(op);
        if (!std::isfinite(seconds) || seconds < 0) {
            warnings_.push_back("not recorded for \"" + name + "\": a duration must be a non-negative number");
            return false;
        }
        add_sample(writable_entry(name), name, seconds);
        return true;
    }

    std::optional<OperationHistory> operation(std::string_view op) const {
        const auto it = doc_.find(std::string(op));
        if (it == doc_.end()) return std::nullopt;
        return detail::history::read_entry(*it, std::string(op), nullptr);
    }

    std::vector<std::string> operations() const {
        std::vector<std::string> names;
        for (const auto& [op, entry] : doc_.items()) names.push_back(op);
        return names;
    }

    bool empty() const noexcept { return doc_.empty(); }
    bool corrupt() const noexcept { return corrupt_; }
    const std::vector<std::string>& warnings() const noexcept { return warnings_; }

    std::string to_json_text() const {
        return doc_.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }

    // Locked read-merge-write: takes the lock, reads the file as it is now (moving a corrupt one
    // aside), applies `change`, writes a temporary file, fsyncs it, renames it over the file and
    // fsyncs the folder. Creates the folder if needed.
    static HistoryFileResult update_file(const std::filesystem::path& path,
                                         const std::function<void(History&)>& change) {
        HistoryFileResult result;
        std::error_code ec;
        if (!path.parent_path().empty()) std::filesystem::create_directories(path.parent_path(), ec);
        detail::history::FileLock lock(path.string() + ".lock");
        if (!lock.locked()) {
            result.error = lock.error();
            return result;
        }
        // Under the lock no other writer has a temporary file in flight: leftovers are a killed writer's.
        remove_stale_temp_files(path);
        std::string text;
        const int err = detail::history::read_whole_file(path, text);
        if (err != 0 && err != ENOENT) {
            result.error = detail::errno_text("cannot read history file", path, err) + "; not overwritten";
            return result;
        }
        History history = err == ENOENT ? History() : parse(text, path.string());
        if (history.corrupt_) {
            const auto aside = move_aside(path);
            if (!aside) {
                result.error = detail::errno_text("cannot move the corrupt history file aside:", path, errno);
                result.warnings = history.warnings_;
                return result;
            }
            history.warnings_.push_back("moved the corrupt history file to " + aside->string());
            result.moved_aside = aside;
        }
        change(history);
        AtomicWriteOptions options;
        options.durable = true;
        const AtomicWriteResult written = write_file_atomically(path, history.to_json_text(), options);
        result.warnings = std::move(history.warnings_);
        if (!written.ok) {
            result.error = written.error;
            return result;
        }
        if (written.fell_back_in_place) result.warnings.push_back(written.error);
        result.ok = true;
        return result;
    }

    static HistoryFileResult record_to_file(const std::filesystem::path& path, std::string_view op,
                                            const std::vector<double>& step_seconds,
                                            const std::vector<int>& cached_steps = {}) {
        return update_file(path, [&](History& h) { h.record(op, step_seconds, cached_steps); });
    }

    static HistoryFileResult record_task_to_file(const std::filesystem::path& path, std::string_view op,
                                                 double seconds) {
        return update_file(path, [&](History& h) { h.record_task(op, seconds); });
    }

private:
    void mark_corrupt(const std::string& origin, const std::string& why) {
        corrupt_ = true;
        warnings_.push_back(origin + " " + why + "; no history used, and it will be moved aside before the next write");
    }

    static std::optional<std::filesystem::path> move_aside(const std::filesystem::path& path) {
        const std::string stamp = detail::history::utc_stamp(std::chrono::system_clock::now());
        const std::string base = path.string() + ".corrupt-" + stamp;
        std::string target = base;
        std::error_code ec;
        for (int n = 1; std::filesystem::exists(target, ec); ++n) target = base + "-" + std::to_string(n);
        if (::rename(path.c_str(), target.c_str()) != 0) return std::nullopt;
        return std::filesystem::path(target);
    }

    // The entry to write into; anything there that is not an object is replaced, with a warning.
    nlohmann::json& writable_entry(const std::string& op) {
        nlohmann::json& entry = doc_[op];
        if (!entry.is_object()) {
            if (!entry.is_null()) warnings_.push_back("history entry \"" + op + "\" was not an object; replaced");
            entry = nlohmann::json::object();
        }
        return entry;
    }

    static void push_recent(nlohmann::json& entry, const char* key, nlohmann::json value, std::size_t keep) {
        nlohmann::json& list = entry[key];
        if (!list.is_array()) list = nlohmann::json::array();
        list.push_back(std::move(value));
        if (list.size() > keep) {
            list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(list.size() - keep));
        }
    }

    void add_sample(nlohmann::json& entry, const std::string& op, double seconds) {
        const OperationHistory old = detail::history::read_entry(entry, op, nullptr);
        if (!old.avg_seconds && (entry.contains("avg_seconds") || entry.contains("samples"))) {
            warnings_.push_back("history entry \"" + op + "\": unusable avg_seconds/samples restarted from this run");
        }
        const std::int64_t n = old.avg_seconds ? old.samples : 0;
        const double avg = old.avg_seconds.value_or(0.0);
        entry["avg_seconds"] = avg + (seconds - avg) / static_cast<double>(n + 1);
        entry["samples"] = n + 1;
        if (entry.contains("recent_seconds") && !detail::history::seconds_array(entry["recent_seconds"])) {
            entry["recent_seconds"] = nlohmann::json::array();
        }
        push_recent(entry, "recent_seconds", seconds, max_recent_seconds);
    }

    nlohmann::json doc_ = nlohmann::json::object();
    std::vector<std::string> warnings_;
    bool corrupt_ = false;
};

}  // namespace azops
// #include <azops/history.hpp> — end
// #include <azops/eta.hpp> — begin
// azops/eta.hpp — remaining time from history and from observed progress, and stall detection.
//
// Owns: azops::EtaEstimator and azops::StallDetector. Time is injected: every call takes seconds on
// any monotonic clock the caller chooses (the same clock for one estimator).
// How the estimate is made, in order of preference:
//  - steps with history ("history"): past runs with this run's number of steps (or, if the
//    Dockerfile gained or lost a step or two, the nearest count, shifted past the place where the
//    finished steps' durations say the change lies) give each step's typical duration and
//    spread (its own variation, once each past run's overall pace is taken out, pooled across
//    steps); a step history only ever took from the cache says nothing of its real length. What
//    is left is scaled by this run's speed against history, held as a belief: a
//    precision-weighted mean of ln(actual / typical) over the finished, uncached steps (a cached
//    step takes ~0 s whatever it took before), shrunk toward 1 so a few noisy seconds cannot
//    swing it, and pushed slower once the current step outlasts what that speed predicts. The
//    current step's time left is the lognormal expectation given how long it has run, so a step
//    longer than all of history still has time left. While every step so far came from the
//    build cache, the cache may go on answering: where it stops is weighed from past rebuilds
//    and from how long this run's cache hits took. Of all the courses (where the cache stops,
//    the speed), the estimate is the time left with the least expected error relative to the
//    time really left (errors about less than a minute count in seconds): the median of the
//    courses' times left, each weighted by its probability over its time left. With nothing yet
//    known of the speed, that is history's typical time x e^(-0.3^2), about 9 % under it (a
//    guess k times too low is wrong by less, relative to the time really left, than one k times
//    too high). The range is the 10th-90th percentile over all courses.
//    As ninja does, once some work is done (15 s and 5 % of the expected work) the run must stay
//    within a sane factor (5x) of history, or history is dropped.
//  - tasks (`task_progress`, e.g. a benchmark under "benchmark_per_task"): history's mean task
//    time counts as a few finished tasks beside the ones this run has finished ("blend").
//  - no per-step history: the operation's average blended with the run's own pace ("blend"), or
//    the run's own pace alone ("progress"); `progress(fraction)` feeds operations without steps.
//  - nothing that supports an estimate: std::nullopt and "none". The estimate is never negative.
// The range (10th-90th percentile) comes from the spread of past runs and what is not yet known
// of this run. bench/eta_accuracy.cpp measures all of this against replayed runs.
// Thread-safety: plain value; the owner locks (the Tracker does). Errors: nothing throws except
// std::bad_alloc; nonsense input (NaN times, step 0, totals that change, steps that go back) is
// absorbed and documented at each call.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>


namespace azops {

struct EtaOptions {
    double trust_min_seconds = 15;        // history is checked against this run only after this long...
    double trust_min_fraction = 0.05;     // ...and after this share of the expected work (ninja's rule)
    double max_history_factor = 5;        // a run this many times faster or slower is not comparable
    int max_step_difference = 2;          // past runs with this many more or fewer steps still compare
    double speed_spread = 0.3;            // prior spread of ln(this run's speed / history's)
    double error_floor_seconds = 60;      // errors about less time left than this count in seconds
    double prior_tasks = 3;               // task mode: history's mean weighs as this many finished tasks
    double stall_min_seconds = 300;       // never call a step stalled before 5 minutes of silence
    double stall_step_factor = 3;         // nor before 3x what history says the current step takes
};

struct EtaRange {
    double low = 0;
    double high = 0;
};

struct EtaEstimate {
    std::optional<double> seconds;
    std::string source = "none";  // history, progress, blend, none
    std::optional<EtaRange> range;
};

// Says how long a task has been silent once the silence is much longer than its current step
// normally takes: max(min_seconds, step_factor x typical step).
class StallDetector {
public:
    explicit StallDetector(double min_seconds = 300, double step_factor = 3) noexcept
        : min_seconds_(min_seconds), step_factor_(step_factor) {}

    // Output or progress came at `t`.
    void sign_of_life(double t) noexcept {
        if (std::isfinite(t) && (!last_ || t > *last_)) last_ = t;
    }

    std::optional<double> last_sign_of_life() const noexcept { return last_; }

    double threshold(std::optional<double> typical_step_seconds) const noexcept {
        return std::max(min_seconds_, step_factor_ * typical_step_seconds.value_or(0.0));
    }

    std::optional<double> stalled_seconds(double now, std::optional<double> typical_step_seconds) const noexcept {
        if (!last_ || !std::isfinite(now)) return std::nullopt;
        const double silent = now - *last_;
        return silent > threshold(typical_step_seconds) ? std::optional<double>(silent) : std::nullopt;
    }

private:
    double min_seconds_;
    double step_factor_;
    std::optional<double> last_;
};

namespace detail::eta {

inline double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

// Linear-interpolated quantile of a non-empty list.
inline double quantile_of(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    const double pos = q * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// The spread of past runs as a range around `eta`: the 10th and 90th percentile of `ratios`
// (past remaining / typical remaining), widened while fewer than three runs support it.
inline EtaRange range_from_ratios(double eta, const std::vector<double>& ratios) {
    double low = std::min(1.0, quantile_of(ratios, 0.1));
    double high = std::max(1.0, quantile_of(ratios, 0.9));
    if (ratios.size() < 3) {
        low = std::min(low, 0.8);
        high = std::max(high, 1.25);
    }
    return {eta * low, eta * high};
}

// Expected time left of a step that has run `elapsed` seconds and whose duration is lognormal
// with this median and log-spread: E[X - e | X > e]. Early on it is about the mean minus the
// elapsed time; past the median it shrinks slowly instead of reaching 0, so a step that runs
// longer than all of history still has time left.
inline double lognormal_time_left(double median, double sigma, double elapsed) {
    if (median <= 0) return 0.0;
    const double mean = median * std::exp(sigma * sigma / 2);
    if (elapsed <= 0) return mean;
    const double mu = std::log(median);
    const double z = (std::log(elapsed) - mu) / sigma;
    if (z > 8) return elapsed * sigma * sigma / (std::log(elapsed) - mu);  // asymptotic form
    const auto upper_tail = [](double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); };
    const double survive = upper_tail(z);
    return std::max(0.0, mean * upper_tail(z - sigma) / survive - elapsed);
}

// Variance of the time left of the same step: Var(X | X > e). The far tail is close to
// exponential, whose sd equals its mean.
inline double lognormal_time_left_variance(double median, double sigma, double elapsed) {
    if (median <= 0) return 0.0;
    const double mu = std::log(median);
    const double z = elapsed > 0 ? (std::log(elapsed) - mu) / sigma : -std::numeric_limits<double>::infinity();
    if (z > 8) return std::pow(lognormal_time_left(median, sigma, elapsed), 2);
    const auto upper_tail = [](double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); };
    const double survive = elapsed > 0 ? upper_tail(z) : 1.0;
    const double first = median * std::exp(sigma * sigma / 2) * (elapsed > 0 ? upper_tail(z - sigma) : 1.0) / survive;
    const double second =
        median * median * std::exp(2 * sigma * sigma) * (elapsed > 0 ? upper_tail(z - 2 * sigma) : 1.0) / survive;
    return std::max(0.0, second - first * first);
}

// log P(X > e) for a lognormal X with this log-median and log-spread.
inline double log_survival(double log_median, double sigma, double elapsed) {
    if (elapsed <= 0) return 0.0;
    const double z = (std::log(elapsed) - log_median) / sigma;
    if (z < 30) return std::log(std::max(0.5 * std::erfc(z / std::sqrt(2.0)), 1e-300));
    return -z * z / 2 - std::log(z * std::sqrt(2 * 3.141592653589793));  // Mills' ratio, past erfc's range
}

// One possible speed of the run (ln of its seconds per typical second) and its probability.
struct SpeedPoint {
    double log_scale = 0;
    double weight = 0;
};

// Where this run's speed may lie: a normal belief (from the finished steps) and, when the current
// step has run `elapsed` seconds of a lognormal duration (log-median `log_typical` + speed,
// log-spread `sigma`), the knowledge that it has not finished yet, so a step much longer than
// history makes the run slower the longer it runs. Speeds beyond `max_factor` either way are not
// considered: such a run is not comparable with history. Returned as points whose weights sum to 1.
inline std::vector<SpeedPoint> speed_belief(double mean, double variance, std::optional<double> log_typical,
                                            double sigma, double elapsed, double max_factor) {
    const double sd = std::sqrt(variance);
    const double bound = std::log(std::max(max_factor, 1.0));
    // While the step is within what the finished steps predict for it, "not finished yet" would
    // only trim the fast tail of the belief, and that trim would rest on the far tail of a spread
    // that a few past runs measured: it counts only once the step has outrun that prediction.
    const bool censored = log_typical && sigma > 0 && elapsed > std::exp(*log_typical + mean);
    double lo = std::max(mean - 4 * sd, -bound);
    double hi = std::min(mean + 4 * sd, bound);
    if (censored) hi = std::min(std::max(hi, std::log(elapsed) - *log_typical + 3 * sigma), bound);
    if (hi <= lo) return {{std::clamp(mean, -bound, bound), 1.0}};
    const int points = 41;
    std::vector<SpeedPoint> belief;
    double top = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < points; ++i) {
        const double u = lo + (hi - lo) * i / (points - 1);
        double log_weight = -0.5 * (u - mean) * (u - mean) / variance;
        if (censored) log_weight += log_survival(*log_typical + u, sigma, elapsed);
        belief.push_back({u, log_weight});
        top = std::max(top, log_weight);
    }
    double sum = 0;
    for (auto& b : belief) sum += (b.weight = std::exp(b.weight - top));
    for (auto& b : belief) b.weight /= sum;
    return belief;
}

// The `q` quantile of a mixture of lognormals (log-mean `mu`, log-sd `sigma`, weight), by bisection
// on the log.
struct LognormalPart {
    double mu = 0;
    double sigma = 0;
    double weight = 0;
};

inline double mixture_quantile(const std::vector<LognormalPart>& parts, double q) {
    double lo = std::numeric_limits<double>::infinity();
    double hi = -lo;
    for (const auto& c : parts) {
        lo = std::min(lo, c.mu - 6 * c.sigma - 1e-9);
        hi = std::max(hi, c.mu + 6 * c.sigma + 1e-9);
    }
    const auto cdf = [&](double x) {
        double f = 0;
        for (const auto& c : parts) {
            f += c.weight * (c.sigma > 0 ? 0.5 * std::erfc((c.mu - x) / (c.sigma * std::sqrt(2.0))) : x >= c.mu ? 1.0 : 0.0);
        }
        return f;
    };
    for (int i = 0; i < 40; ++i) {
        const double mid = (lo + hi) / 2;
        (cdf(mid) < q ? lo : hi) = mid;
    }
    return std::exp((lo + hi) / 2);
}

// The value that splits the weight in half, interpolated between neighbours (each value's weight
// is centred on it) so that it moves smoothly as the weights do. `values`: value, weight.
inline double weighted_median(std::vector<std::pair<double, double>> values) {
    if (values.empty()) return 0.0;
    std::sort(values.begin(), values.end());
    double total = 0;
    for (const auto& v : values) total += v.second;
    double below = 0;
    double previous_value = values.front().first;
    double previous_mid = 0;
    for (const auto& [value, weight] : values) {
        const double mid = (below + weight / 2) / total;
        if (mid >= 0.5) {
            if (mid <= previous_mid || below == 0) return value;
            return previous_value + (value - previous_value) * (0.5 - previous_mid) / (mid - previous_mid);
        }
        below += weight;
        previous_value = value;
        previous_mid = mid;
    }
    return values.back().first;
}

// Spread (sd of the log) of a step's past durations. A few runs say little about it, so the
// estimate is pulled toward `usual` as if two more runs had shown that spread.
inline double log_spread(const std::vector<double>& samples, double usual) {
    std::vector<double> logs;
    for (double s : samples) {
        if (s > 0) logs.push_back(std::log(s));
    }
    double mean = 0;
    for (double l : logs) mean += l;
    if (!logs.empty()) mean /= static_cast<double>(logs.size());
    double squares = 0;
    for (double l : logs) squares += (l - mean) * (l - mean);
    const double pseudo_runs = 2;
    const double dof = logs.empty() ? 0.0 : static_cast<double>(logs.size() - 1);
    return std::sqrt((squares + pseudo_runs * usual * usual) / (dof + pseudo_runs));
}

// What past runs say of each step: its typical (median) duration when not cached, whether any
// past run did it uncached, and its spread (sd of the log). Each past run ran at a pace of its
// own (another machine, another hour) that shows in all its steps alike, so durations are first
// divided by their run's pace (the median of its steps' ratios to the plain medians, when at
// least three steps show it) before their spread is taken: what is left is the step's own
// variation. A few runs say little of one step's spread, so each is pulled toward the spread all
// steps show together (or, with too little history for that, toward 0.25) as if two more runs
// had shown it. How unsure each median still is stays apart: all medians come from the same past
// runs, so their errors largely cancel in this run's speed against them, but not in the time the
// steps left will take.
struct StepProfile {
    std::vector<double> typical;
    std::vector<bool> known;
    std::vector<double> spread;
    std::vector<double> typical_spread;  // how unsure the typical duration itself is (sd of its log)
};

inline StepProfile step_profile(const std::vector<const PastRun*>& runs, std::size_t steps) {
    const auto uncached = [&](std::size_t r, std::size_t j) {
        return !runs[r]->cached(static_cast<int>(j) + 1) && runs[r]->step_seconds[j] > 0;
    };
    std::vector<double> plain(steps, 0.0);
    for (std::size_t j = 0; j < steps; ++j) {
        std::vector<double> seconds;
        for (std::size_t r = 0; r < runs.size(); ++r) {
            if (uncached(r, j)) seconds.push_back(runs[r]->step_seconds[j]);
        }
        if (!seconds.empty()) plain[j] = median_of(seconds);
    }
    std::vector<double> log_pace(runs.size(), 0.0);
    std::vector<bool> paced(runs.size(), false);
    double pace_sum = 0;
    int paced_runs = 0;
    for (std::size_t r = 0; r < runs.size(); ++r) {
        std::vector<double> ratios;
        for (std::size_t j = 0; j < steps; ++j) {
            if (uncached(r, j) && plain[j] > 0) ratios.push_back(std::log(runs[r]->step_seconds[j] / plain[j]));
        }
        if (ratios.size() < 3) continue;
        log_pace[r] = median_of(ratios);
        paced[r] = true;
        pace_sum += log_pace[r];
        ++paced_runs;
    }
    for (std::size_t r = 0; r < runs.size(); ++r) {
        if (paced[r]) log_pace[r] -= pace_sum / paced_runs;  // paces relative to history's average
    }

    StepProfile out;
    std::vector<std::vector<double>> normalised(steps);
    double squares = 0;
    double dof = 0;
    for (std::size_t j = 0; j < steps; ++j) {
        std::vector<double> all;
        for (std::size_t r = 0; r < runs.size(); ++r) {
            all.push_back(runs[r]->step_seconds[j]);
            if (uncached(r, j)) normalised[j].push_back(runs[r]->step_seconds[j] / std::exp(log_pace[r]));
        }
        // A step that history only ever took from the cache has no known uncached duration:
        // its cached time stands in, and it says nothing about this run's speed.
        out.typical.push_back(plain[j] > 0 ? plain[j] : median_of(all));
        out.known.push_back(!normalised[j].empty());
        if (normalised[j].size() >= 2) {
            double mean = 0;
            for (double x : normalised[j]) mean += std::log(x);
            mean /= static_cast<double>(normalised[j].size());
            for (double x : normalised[j]) squares += std::pow(std::log(x) - mean, 2);
            dof += static_cast<double>(normalised[j].size() - 1);
        }
    }
    const double usual = 0.25;
    const double pseudo_runs = 2;
    const double pooled = std::sqrt((squares + pseudo_runs * usual * usual) / (dof + pseudo_runs));
    for (std::size_t j = 0; j < steps; ++j) {
        const auto n = static_cast<double>(normalised[j].size());
        out.spread.push_back(std::clamp(log_spread(normalised[j], pooled), 0.05, 1.0));
        // A median of n samples varies by about sqrt(pi / 2n) of their spread.
        out.typical_spread.push_back(n > 0 ? out.spread.back() * std::sqrt(3.141592653589793 / (2 * n)) : 0.0);
    }
    return out;
}

}  // namespace detail::eta

class EtaEstimator {
public:
    // `history` may be null (no history); what the estimator needs of it is copied here, so later
    // changes to it are not seen. `operation` is the history entry: "docker_build", or
    // `benchmark_task_key` for a benchmark fed through `task_progress`.
    EtaEstimator(const History* history, std::string_view operation, EtaOptions options = {})
        : options_(options), stall_(options.stall_min_seconds, options.stall_step_factor) {
        if (history != nullptr) past_ = history->operation(operation).value_or(OperationHistory{});
    }

    // The operation started at `t0`; the first other call starts it too if this one is skipped.
    void start(double t0) {
        if (!std::isfinite(t0)) return;
        if (!t0_) t0_ = t0;
        seen(t0);
    }

    // Step `step` (1-based) of `total` started. Step 0 means "not started yet"; total 0 means the
    // total is unknown. A new total starts the step record afresh (another stage or Dockerfile); a
    // step number lower than the current one means those steps run again.
    void step_started(int step, int total, double t) {
        if (!begin_call(t)) return;
        mode_ = Mode::steps;
        if (step <= 0) return;
        set_total(total, step);
        if (step < current_) {
            for (std::size_t i = static_cast<std::size_t>(step) - 1; i < steps_.size(); ++i) steps_[i] = {};
        }
        for (int i = 1; i < step; ++i) {
            StepObs& s = obs(i);
            if (s.start && !s.end) s.end = t;
        }
        StepObs& s = obs(step);
        s = {};
        s.start = t;
        current_ = step;
    }

    // Step `step` finished at `t`; `cached` when it came from the build cache.
    void step_finished(int step, double t, bool cached = false) {
        if (!begin_call(t)) return;
        mode_ = Mode::steps;
        if (step <= 0) return;
        set_total(total_, step);
        StepObs& s = obs(step);
        if (!s.start) s.start = std::min(t, last_boundary(step));
        s.end = t;
        s.cached = cached;
        if (step >= current_) current_ = step + 1;
    }

    // `finished` of `total` tasks are done (tasks run one after another).
    void task_progress(int finished, int total, double t) {
        if (!begin_call(t)) return;
        mode_ = Mode::tasks;
        tasks_total_ = std::max(0, total);
        finished = std::max(0, finished);
        if (tasks_total_ > 0) finished = std::min(finished, tasks_total_);
        if (finished > tasks_done_) {
            // Several tasks reported at once share the time since the last report.
            const double each = (t - last_task_change_.value_or(*t0_)) / (finished - tasks_done_);
            for (int i = tasks_done_; i < finished; ++i) task_seconds_.push_back(each);
            last_task_change_ = t;
        } else if (finished < tasks_done_) {
            task_seconds_.resize(static_cast<std::size_t>(finished));
            last_task_change_ = t;
        }
        tasks_done_ = finished;
    }

    // Plain progress for operations without steps: `fraction` of the work (0..1) is done.
    void progress(double fraction, double t) {
        if (!std::isfinite(fraction) || !begin_call(t)) return;
        mode_ = Mode::percent;
        fraction_ = std::clamp(fraction, 0.0, 1.0);
    }

    // Output came (a log line) without progress; only the stall detector hears of it.
    void sign_of_life(double t) { stall_.sign_of_life(t); }

    // The estimate at `now`; `source()` then tells where it came from.
    std::optional<double> eta_seconds(double now) {
        last_ = estimate(now);
        return last_.seconds;
    }

    const std::string& source() const noexcept { return last_.source; }

    // Low and high remaining seconds from the spread of past runs; nullopt without history.
    std::optional<std::pair<double, double>> eta_range(double now) const {
        const auto e = estimate(now);
        if (!e.range) return std::nullopt;
        return std::make_pair(e.range->low, e.range->high);
    }

    EtaEstimate estimate(double now) const {
        if (!t0_) return {};
        now = std::isfinite(now) ? std::max(now, last_seen_) : last_seen_;
        switch (mode_) {
            case Mode::steps: return steps_estimate(now);
            case Mode::tasks: return tasks_estimate(now);
            case Mode::percent: return percent_estimate(now);
            case Mode::none: break;
        }
        return average_only(now);
    }

    // What history says the current step (or task) takes at this run's pace (from finished steps:
    // the current step's own overrun must not raise its stall threshold); nullopt if unknown.
    std::optional<double> typical_step_seconds(double now) const {
        if (!t0_) return std::nullopt;
        now = std::isfinite(now) ? std::max(now, last_seen_) : last_seen_;
        if (mode_ == Mode::steps) {
            const auto p = step_plan(now);
            if (p && p->comparable && p->has(p->past_current)) {
                return p->finished_scale * p->typical[static_cast<std::size_t>(p->past_current)];
            }
        } else if (mode_ == Mode::tasks) {
            if (const auto m = task_mean()) return m->seconds;
        }
        return std::nullopt;
    }

    std::optional<double> last_sign_of_life() const noexcept { return stall_.last_sign_of_life(); }

    // How long the task has been silent, once that is much longer than its current step takes.
    std::optional<double> stalled_seconds(double now) const {
        return stall_.stalled_seconds(now, typical_step_seconds(now));
    }

    // This run's steps for History::record, once every step has finished; nullopt before. The
    // time outside the steps belongs to the operation too (a build reads its definition and pulls
    // metadata before step 1, waits between steps, exports the image after the last): each gap
    // goes to the step before it, the wait before step 1 to step 1, and the time from the last
    // step's end until `ended` to the last step, so the steps add up to the whole run. With
    // `ended`, a last step that started and was never said to finish ends then.
    std::optional<PastRun> finished_run(std::optional<double> ended = std::nullopt) const {
        if (total_ <= 0 || static_cast<int>(steps_.size()) < total_) return std::nullopt;
        const bool has_end = ended.has_value() && std::isfinite(ended.value_or(0.0));
        const double end_time = has_end ? ended.value_or(0.0) : 0.0;
        const auto n = static_cast<std::size_t>(total_);
        std::vector<StepObs> steps(steps_.begin(), steps_.begin() + static_cast<std::ptrdiff_t>(n));
        if (has_end && steps.back().start && !steps.back().end) steps.back().end = std::max(end_time, *steps.back().start);
        PastRun run;
        for (std::size_t i = 0; i < n; ++i) {
            if (!steps[i].start || !steps[i].end) return std::nullopt;
            run.step_seconds.push_back(*steps[i].end - *steps[i].start);
            if (steps[i].cached) run.cached_steps.push_back(static_cast<int>(i) + 1);
        }
        const auto gap = [](double from, double to) { return std::max(0.0, to - from); };
        run.step_seconds.front() += gap(t0_.value_or(*steps.front().start), *steps.front().start);
        for (std::size_t i = 0; i + 1 < n; ++i) run.step_seconds[i] += gap(*steps[i].end, *steps[i + 1].start);
        double last_end = *steps.front().end;
        for (const StepObs& o : steps) last_end = std::max(last_end, *o.end);
        if (has_end) run.step_seconds.back() += gap(last_end, end_time);
        return run;
    }

    // Seconds of each finished task, for History::record_task.
    const std::vector<double>& task_seconds() const noexcept { return task_seconds_; }

private:
    enum class Mode { none, steps, tasks, percent };

    struct StepObs {
        std::optional<double> start;
        std::optional<double> end;
        bool cached = false;
    };

    // Per-step history matched to this run, and where the run stands against it. Indexes are
    // the past runs' steps (0-based), which differ from this run's when the step count changed.
    struct StepPlan {
        std::vector<const PastRun*> runs;
        std::vector<double> typical;  // per past step, seconds when not cached
        std::vector<bool> known;      // history has an uncached duration of the step
        std::vector<double> spread;   // per past step, sd of log(duration) across past runs
        std::vector<double> typical_spread;  // per past step, how unsure `typical` is (sd of its log)
        double typical_total = 0;
        int shift = 0;                // this run's steps minus the past runs'
        int change_at = 0;            // this run's first step (0-based) after the change, or total
        int current = 1;              // this run's first step not done (total + 1 when all are)
        int past_current = 0;         // the past step it matches; out of range when none does
        double current_elapsed = 0;
        std::vector<detail::eta::SpeedPoint> speeds;  // belief in this run's seconds per typical second
        double finished_scale = 1;    // its best guess from finished steps only (the stall threshold's)
        double spread_inflation = 1;  // how much more this run's steps vary than history's
        int cache_streak = 0;         // this run's cache hits so far, while every finished step was one
        double hit_log_median = 0;    // how long those hits took: log-median and log-spread
        double hit_log_spread = 1;
        double evidence = 0;          // typical seconds of finished, uncached steps
        bool comparable = true;

        bool has(int j) const noexcept { return j >= 0 && j < static_cast<int>(typical.size()); }
        // The past step matching this run's step `i` (0-based) if the change lies at `at`; -1 for
        // a step the past runs did not have.
        int past_step(int i, int at) const noexcept {
            if (i < at) return i;
            if (shift > 0 && i < at + shift) return -1;
            return i - shift;
        }
        // The first past step matching this run's step `i` (0-based) or a later one; past the
        // last past step when none does.
        int first_past_from(int i, int total) const noexcept {
            for (; i < total; ++i) {
                const int j = past_step(i, change_at);
                if (j >= 0) return j;
            }
            return static_cast<int>(typical.size());
        }
    };

    bool begin_call(double t) {
        if (!std::isfinite(t)) return false;
        start(t);
        seen(t);
        stall_.sign_of_life(t);
        return true;
    }

    void seen(double t) { last_seen_ = std::max(last_seen_, t); }

    // A new reported total is another build (or stage): its steps are not this one's.
    void set_total(int total, int step) {
        if (total > 0) {
            if (reported_total_ > 0 && total != reported_total_) {
                steps_.clear();
                current_ = 0;
                total_ = 0;
            }
            reported_total_ = total;
            total_ = std::max(total_, total);
        }
        if (total_ > 0) total_ = std::max(total_, step);
    }

    StepObs& obs(int step) {
        if (static_cast<int>(steps_.size()) < step) steps_.resize(static_cast<std::size_t>(step));
        return steps_[static_cast<std::size_t>(step) - 1];
    }

    // When step `step` can have started at the latest: the last end before it, or t0.
    double last_boundary(int step) const {
        double at = *t0_;
        for (int i = 1; i < step && i <= static_cast<int>(steps_.size()); ++i) {
            const auto& s = steps_[static_cast<std::size_t>(i) - 1];
            if (s.end) at = std::max(at, *s.end);
        }
        return at;
    }

    bool step_done(int i) const {
        if (i > static_cast<int>(steps_.size())) return false;
        const auto& s = steps_[static_cast<std::size_t>(i) - 1];
        return s.end.has_value() || (i < current_ && !s.start);
    }

    int first_open_step() const {
        int c = std::max(current_, 1);
        while (step_done(c)) ++c;
        return c;
    }

    int steps_done() const {
        int n = 0;
        for (int i = 1; i <= total_; ++i) n += step_done(i) ? 1 : 0;
        return n;
    }

    // Past runs to compare with: those with this run's number of steps, else those that differ
    // by a step or two (the Dockerfile changed a little): the nearest count, and of two equally
    // near counts the one more runs had.
    std::vector<const PastRun*> comparable_runs() const {
        const auto with_steps = [&](int count) {
            std::vector<const PastRun*> runs;
            for (const auto& r : past_.recent_runs) {
                if (static_cast<int>(r.step_seconds.size()) == count) runs.push_back(&r);
            }
            return runs;
        };
        for (int diff = 0; diff <= options_.max_step_difference; ++diff) {
            auto fewer = with_steps(total_ - diff);
            auto more = diff > 0 ? with_steps(total_ + diff) : std::vector<const PastRun*>{};
            if (!fewer.empty() || !more.empty()) return more.size() > fewer.size() ? more : fewer;
        }
        return {};
    }

    // Duration of this run's finished, uncached step `i` (0-based), if it has one.
    std::optional<double> finished_seconds(int i) const {
        if (i < 0 || i >= static_cast<int>(steps_.size())) return std::nullopt;
        const auto& s = steps_[static_cast<std::size_t>(i)];
        if (!s.start || !s.end || s.cached) return std::nullopt;
        return *s.end - *s.start;
    }

    // With another step count, where did the change happen? Each place among the finished steps
    // and the current one is tried (steps before it match the past steps of the same number, steps
    // after it are shifted by the difference, inserted steps match nothing and cost one e-fold
    // each), and so is "not reached yet"; the place whose matches fit the durations best wins.
    // The current step has not finished: calling it the new one costs nothing until matching it
    // costs more than an insertion would, that is, once it has outrun its match by one e-fold.
    int change_position(const StepPlan& p) const {
        const int shift = p.shift;
        if (shift == 0) return total_;
        const int finished = p.current - 1;
        const auto misfit = [&](int change_at) {
            double sum = 0;
            for (int i = 0; i < finished; ++i) {
                const int j = p.past_step(i, change_at);
                if (j < 0) {
                    sum += 1.0;
                    continue;
                }
                const auto seconds = finished_seconds(i);
                if (!seconds || *seconds <= 0 || !p.has(j)) continue;
                const double typical = p.typical[static_cast<std::size_t>(j)];
                sum += typical > 0 ? std::abs(std::log(*seconds / typical)) : 10.0;  // 10: e^10 off
            }
            const int j = finished < total_ ? p.past_step(finished, change_at) : -1;
            if (j >= 0 && p.has(j) && p.known[static_cast<std::size_t>(j)] && p.current_elapsed > 0) {
                const double typical = p.typical[static_cast<std::size_t>(j)];
                sum += std::max(0.0, std::log(p.current_elapsed / typical) - 1.0);
            }
            return sum;
        };
        int best = total_;
        double best_misfit = misfit(total_);
        for (int change_at = 0; change_at <= finished && change_at < total_; ++change_at) {
            const double m = misfit(change_at);
            if (m < best_misfit) {
                best = change_at;
                best_misfit = m;
            }
        }
        return best;
    }

    // Docker's cache answers a prefix of the build: the steps before the first that changed. While
    // every finished step of this run came from the cache, the streak's length, and how long those
    // hits took (at least 10 ms each, the resolution of a log line's arrival); nothing otherwise.
    std::pair<int, std::vector<double>> cache_hits() const {
        const int finished = first_open_step() - 1;
        std::vector<double> hits;
        for (int i = 0; i < finished && i < static_cast<int>(steps_.size()); ++i) {
            const auto& s = steps_[static_cast<std::size_t>(i)];
            if (!s.cached) return {0, {}};
            hits.push_back(s.start && s.end ? std::max(*s.end - *s.start, 0.01) : 0.01);
        }
        if (static_cast<int>(hits.size()) < finished) return {0, {}};
        return {finished, hits};
    }

    std::optional<StepPlan> step_plan(double now) const {
        if (total_ <= 0) return std::nullopt;
        StepPlan p;
        p.runs = comparable_runs();
        if (p.runs.empty()) return std::nullopt;
        const std::size_t past_steps = p.runs.front()->step_seconds.size();
        detail::eta::StepProfile profile = detail::eta::step_profile(p.runs, past_steps);
        p.typical = std::move(profile.typical);
        p.known = std::move(profile.known);
        p.spread = std::move(profile.spread);
        p.typical_spread = std::move(profile.typical_spread);
        for (double typical : p.typical) p.typical_total += typical;
        if (p.typical_total <= 0) return std::nullopt;
        p.current = first_open_step();
        if (p.current <= total_) p.current_elapsed = std::max(0.0, now - current_start(p.current));
        p.shift = total_ - static_cast<int>(past_steps);
        p.change_at = change_position(p);
        p.past_current = p.current <= total_ ? p.past_step(p.current - 1, p.change_at) : static_cast<int>(past_steps);

        // This run's speed against history, in logs: every finished, uncached step is one
        // measurement, weighted by how steady that step is across past runs; the prior (speed 1,
        // spread `speed_spread`) keeps a few noisy seconds from swinging it.
        double weighted = 0;
        double weights = 0;
        double actual = 0;
        std::vector<std::pair<double, double>> measured;  // ln(actual / typical), spread
        const auto measure = [&](int j, double seconds) {
            const auto k = static_cast<std::size_t>(j);
            if (!p.has(j) || !p.known[k] || p.typical[k] <= 0 || seconds <= 0) return false;
            const double w = 1.0 / (p.spread[k] * p.spread[k]);
            const double y = std::log(seconds / p.typical[k]);
            weighted += w * y;
            weights += w;
            measured.emplace_back(y, p.spread[k]);
            return true;
        };
        for (int i = 0; i + 1 < p.current; ++i) {
            const auto seconds = finished_seconds(i);
            const int j = p.past_step(i, p.change_at);
            if (seconds && measure(j, *seconds)) {
                actual += *seconds;
                p.evidence += p.typical[static_cast<std::size_t>(j)];
            }
        }
        const double prior = 1.0 / (options_.speed_spread * options_.speed_spread);
        // Steps of this run that stray from one common speed more than history's spreads allow
        // (say, its network is slow but its CPU fast) say less about the steps left: each counts as
        // that much less precise (overdispersion), and the steps left vary that much more.
        double squares = 0;
        const double unshrunk = weights > 0 ? weighted / weights : 0.0;
        for (const auto& [y, spread] : measured) squares += std::pow((y - unshrunk) / spread, 2);
        p.spread_inflation = std::max(1.0, (squares + 2.0) / (static_cast<double>(measured.size()) + 1.0));
        const double finished_mean = weighted / p.spread_inflation / (weights / p.spread_inflation + prior);
        const double finished_variance = 1.0 / (weights / p.spread_inflation + prior);
        p.finished_scale = std::exp(finished_mean);
        // The current step, still running, is evidence too: the run is at least slow enough for it
        // not to have finished yet.
        std::optional<double> log_current_typical;
        double current_spread = 0;
        if (p.has(p.past_current)) {
            const auto k = static_cast<std::size_t>(p.past_current);
            if (p.known[k] && p.typical[k] > 0) {
                log_current_typical = std::log(p.typical[k]);
                current_spread = p.spread[k];
            }
        }
        p.speeds = detail::eta::speed_belief(finished_mean, finished_variance, log_current_typical,
                                             current_spread, p.current_elapsed, options_.max_history_factor);
        const auto [streak, hits] = cache_hits();
        p.cache_streak = streak;
        if (!hits.empty()) {
            double log_sum = 0;
            for (double h : hits) log_sum += std::log(h);
            p.hit_log_median = log_sum / static_cast<double>(hits.size());
            p.hit_log_spread = detail::eta::log_spread(hits, 1.0);
        }
        const bool enough = now - *t0_ >= options_.trust_min_seconds &&
                            p.evidence >= options_.trust_min_fraction * p.typical_total && p.evidence > 0;
        if (enough) {
            const double ratio = actual / p.evidence;
            p.comparable = ratio <= options_.max_history_factor && ratio >= 1.0 / options_.max_history_factor;
        }
        return p;
    }

    double current_start(int step) const {
        if (step <= static_cast<int>(steps_.size())) {
            const auto& s = steps_[static_cast<std::size_t>(step) - 1];
            if (s.start) return *s.start;
        }
        return last_boundary(step);
    }

    EtaEstimate steps_estimate(double now) const {
        const auto p = step_plan(now);
        if (!p) return total_ > 0 ? average_blend(now) : average_only(now);
        if (!p->comparable) return own_pace(now);
        EtaEstimate e;
        e.source = "history";
        if (p->current > total_) {
            e.seconds = 0.0;
            return e;
        }
        // The current step (if the past runs had it) from its elapsed time, then every past step
        // after the one it matches (or, for a new step, after the ones before it).
        const int jc = p->past_current;
        // Every way the run may go on (where the cache stops answering; its speed) is a course
        // with a probability. Along each, the current step's expected time left given how long it
        // has run, plus the steps after it (and the cache hits before its uncached work); around
        // it, the spread past runs show for those steps (widened when this run's steps disagree
        // more than that). Which course the run is on is what is unknown, so the estimate is the
        // one whose expected error relative to the time really left is least: the median of the
        // courses' times left, each weighted by its probability over its time left (an ETA of 10
        // minutes when 1 is left is ten times wrong, one of 1 minute when 10 are left only 0.9).
        // Below `error_floor_seconds` an error counts in seconds: a slim chance that only a few
        // cache hits are left must not pull the ETA of a long build down to nothing. The range is
        // the 10th to 90th percentile of all courses together.
        const auto stops = cache_stops(*p);
        const double hit_seconds = p->cache_streak > 0 ? std::exp(p->hit_log_median) : 0.0;
        std::vector<std::pair<double, double>> means;  // a course's seconds left, its probability / them
        std::vector<detail::eta::LognormalPart> parts;
        for (const auto& [first_uncached, stop_weight] : stops) {
            const bool timed_current = first_uncached == p->current - 1 && p->has(jc);
            const int from = timed_current ? jc + 1 : p->first_past_from(first_uncached, total_);
            const double hits_left = hit_seconds * (first_uncached - (p->current - 1));
            double typical_left = 0;
            double step_variance = 0;
            for (int j = from; j < static_cast<int>(p->typical.size()); ++j) {
                const auto k = static_cast<std::size_t>(j);
                typical_left += p->typical[k];
                step_variance += std::pow(p->typical[k] * p->spread[k], 2) * p->spread_inflation +
                                 std::pow(p->typical[k] * p->typical_spread[k], 2);
            }
            for (const auto& speed : p->speeds) {
                const double scale = std::exp(speed.log_scale);
                double mean = hits_left + scale * typical_left;
                double variance = scale * scale * step_variance;
                if (timed_current) {
                    const auto k = static_cast<std::size_t>(jc);
                    const double median = scale * p->typical[k];
                    mean += detail::eta::lognormal_time_left(median, p->spread[k], p->current_elapsed);
                    variance += p->spread_inflation *
                                detail::eta::lognormal_time_left_variance(median, p->spread[k], p->current_elapsed);
                }
                if (mean > 0 && stop_weight * speed.weight > 0) {
                    means.emplace_back(mean, stop_weight * speed.weight / std::max(mean, options_.error_floor_seconds));
                    const double sigma2 = std::log1p(variance / (mean * mean));
                    parts.push_back({std::log(mean) - sigma2 / 2, std::sqrt(sigma2), stop_weight * speed.weight});
                }
            }
        }
        if (parts.empty()) {
            e.seconds = 0.0;
            return e;
        }
        e.seconds = detail::eta::weighted_median(std::move(means));
        e.range = EtaRange{std::min(*e.seconds, detail::eta::mixture_quantile(parts, 0.1)),
                           std::max(*e.seconds, detail::eta::mixture_quantile(parts, 0.9))};
        return e;
    }

    // Where this run's uncached work resumes (its 0-based step; total when nothing is left but
    // cache hits) and how likely each place is. Outside a cache streak, at the current step. In
    // one, the cache answers up to the first step that changed, which is where past runs that
    // came as far from the cache stopped (a rebuild after an edit usually changes the same COPY),
    // or, as if one more run had stopped at each with equal chance, anywhere after the streak.
    // The current step is a hit only if hits here last as long as it has run so far.
    std::vector<std::pair<int, double>> cache_stops(const StepPlan& p) const {
        const int current = p.current - 1;
        if (p.cache_streak == 0 || current >= total_) return {{current, 1.0}};
        std::vector<double> prior(static_cast<std::size_t>(total_ - current + 1), 1.0 / (total_ - current + 1));
        for (const PastRun* run : p.runs) {
            int past_stop = 0;
            while (past_stop < static_cast<int>(run->step_seconds.size()) && run->cached(past_stop + 1)) ++past_stop;
            const int stop = past_stop < p.change_at ? past_stop : std::min(past_stop + p.shift, total_);
            if (stop >= current) prior[static_cast<std::size_t>(stop - current)] += 1;
        }
        const double hit_lasts = std::exp(detail::eta::log_survival(p.hit_log_median, p.hit_log_spread, p.current_elapsed));
        double work_lasts = 1;
        if (p.has(p.past_current)) {
            const auto k = static_cast<std::size_t>(p.past_current);
            work_lasts = 0;
            for (const auto& speed : p.speeds) {
                work_lasts += speed.weight * std::exp(detail::eta::log_survival(std::log(p.typical[k]) + speed.log_scale,
                                                                               p.spread[k], p.current_elapsed));
            }
        }
        std::vector<std::pair<int, double>> stops;
        double sum = 0;
        for (std::size_t m = 0; m < prior.size(); ++m) {
            const double w = prior[m] * (m == 0 ? work_lasts : hit_lasts);
            stops.emplace_back(current + static_cast<int>(m), w);
            sum += w;
        }
        if (sum <= 0) return {{current, 1.0}};
        for (auto& stop : stops) stop.second /= sum;
        return stops;
    }

    // The run's own pace: the mean time of the steps done so far for each step left.
    std::optional<double> own_pace_seconds(double now) const {
        const int done = steps_done();
        if (total_ <= 0 || done <= 0) return std::nullopt;
        const int c = first_open_step();
        if (c > total_) return 0.0;
        const double mean = (last_boundary(c) - *t0_) / done;
        const double elapsed = std::max(0.0, now - current_start(c));
        return mean * (total_ - done - 1) + std::max(0.0, mean - elapsed);
    }

    EtaEstimate own_pace(double now) const {
        EtaEstimate e;
        e.seconds = own_pace_seconds(now);
        if (e.seconds) e.source = "progress";
        return e;
    }

    // Spread of the operation's past totals around their mean, as a range around `eta`.
    std::optional<EtaRange> average_range(double eta) const {
        if (!past_.avg_seconds || *past_.avg_seconds <= 0 || past_.recent_seconds.size() < 2) return std::nullopt;
        std::vector<double> ratios;
        for (double s : past_.recent_seconds) ratios.push_back(s / *past_.avg_seconds);
        return detail::eta::range_from_ratios(eta, ratios);
    }

    // History's average alone: what is left of it. Nothing once the run has outlasted it.
    EtaEstimate average_only(double now) const {
        EtaEstimate e;
        if (!past_.avg_seconds) return e;
        const double left = *past_.avg_seconds - (now - *t0_);
        if (left <= 0) return e;
        e.seconds = left;
        e.source = "history";
        e.range = average_range(left);
        return e;
    }

    // Steps without matching per-step history: the average, trusted less as the run's own pace
    // covers more of its steps.
    EtaEstimate average_blend(double now) const {
        const auto pace = own_pace_seconds(now);
        if (!past_.avg_seconds) return own_pace(now);
        if (!pace) return average_only(now);
        const double share = static_cast<double>(steps_done()) / total_;
        const double from_average = std::max(0.0, *past_.avg_seconds - (now - *t0_));
        EtaEstimate e;
        e.seconds = (1 - share) * from_average + share * *pace;
        e.source = "blend";
        e.range = average_range(*e.seconds);
        return e;
    }

    struct TaskMean {
        double seconds = 0;
        bool from_history = false;  // history's mean is part of it
    };

    std::optional<double> history_task_mean() const {
        if (past_.avg_seconds && *past_.avg_seconds > 0) return past_.avg_seconds;
        return std::nullopt;
    }

    // Mean task time for this run: the finished tasks' mean, with history's counting as a few more
    // tasks while the run stays within a sane factor of it.
    std::optional<TaskMean> task_mean() const {
        double sum = 0;
        for (double s : task_seconds_) sum += s;
        const auto k = static_cast<double>(task_seconds_.size());
        auto hist = history_task_mean();
        if (hist && k >= 3) {
            const double ratio = (sum / k) / *hist;
            if (ratio > options_.max_history_factor || ratio < 1.0 / options_.max_history_factor) hist.reset();
        }
        if (hist) return TaskMean{(sum + options_.prior_tasks * *hist) / (k + options_.prior_tasks), true};
        if (k > 0) return TaskMean{sum / k, false};
        return std::nullopt;
    }

    EtaEstimate tasks_estimate(double now) const {
        EtaEstimate e;
        const auto mean = task_mean();
        if (!mean || tasks_total_ <= 0) return e;
        e.source = !mean->from_history ? "progress" : task_seconds_.empty() ? "history" : "blend";
        const int left_tasks = tasks_total_ - tasks_done_;
        if (left_tasks <= 0) {
            e.seconds = 0.0;
            return e;
        }
        const double in_current = now - last_task_change_.value_or(*t0_);
        e.seconds = std::max(0.0, mean->seconds - in_current) + (left_tasks - 1) * mean->seconds;

        // Spread: of past tasks (at this run's pace) if history has them, else of this run's.
        std::vector<double> spread = past_.recent_seconds;
        double spread_scale = mean->from_history ? mean->seconds / *history_task_mean() : 1.0;
        if (!mean->from_history || spread.size() < 2) {
            spread = task_seconds_;
            spread_scale = 1.0;
        }
        if (spread.size() >= 2) {
            double m = 0;
            for (double s : spread) m += s;
            m /= static_cast<double>(spread.size());
            double var = 0;
            for (double s : spread) var += (s - m) * (s - m);
            const double sd = std::sqrt(var / static_cast<double>(spread.size() - 1)) * spread_scale;
            // Each task left varies by sd; the mean itself is known from k (+ prior) tasks.
            const double n = left_tasks;
            const double known = static_cast<double>(task_seconds_.size()) +
                                 (mean->from_history ? options_.prior_tasks : 0.0);
            const double sd_left = std::sqrt(n * sd * sd + n * n * sd * sd / std::max(known, 1.0));
            e.range = EtaRange{std::max(0.0, *e.seconds - 1.2816 * sd_left), *e.seconds + 1.2816 * sd_left};
        }
        return e;
    }

    // Plain progress: the run's pace (elapsed / fraction), blended with history's average while
    // little is done.
    EtaEstimate percent_estimate(double now) const {
        const double elapsed = now - *t0_;
        if (fraction_ >= 1.0) {
            EtaEstimate e;
            e.seconds = 0.0;
            e.source = past_.avg_seconds ? "blend" : "progress";
            return e;
        }
        if (fraction_ <= 0.0 || elapsed <= 0) return average_only(now);
        const double pace = elapsed * (1 - fraction_) / fraction_;
        EtaEstimate e;
        if (!past_.avg_seconds) {
            e.seconds = pace;
            e.source = "progress";
            return e;
        }
        const double from_average = *past_.avg_seconds * (1 - fraction_);
        e.seconds = (1 - fraction_) * from_average + fraction_ * pace;
        e.source = "blend";
        e.range = average_range(*e.seconds);
        return e;
    }

    EtaOptions options_;
    OperationHistory past_;
    StallDetector stall_;
    Mode mode_ = Mode::none;
    std::optional<double> t0_;
    double last_seen_ = -std::numeric_limits<double>::infinity();
    // steps
    int total_ = 0;
    int reported_total_ = 0;
    int current_ = 0;
    std::vector<StepObs> steps_;
    // tasks
    int tasks_total_ = 0;
    int tasks_done_ = 0;
    std::optional<double> last_task_change_;
    std::vector<double> task_seconds_;
    // percent
    double fraction_ = 0;
    EtaEstimate last_;
};

}  // namespace azops
// #include <azops/eta.hpp> — end
// #include <azops/tracker.hpp> — begin
// azops/tracker.hpp — azops::Tracker, the one object a program talks to.
//
// Owns: the state of one task (operations, phases, steps, log tail, VM, final state), reading each
// operation's output with the matching parser, the task's ETA (this operation's estimate plus what
// history says the planned operations still to come take), its cost by VM state, the history file
// updates of finished operations, the run token and stop requests, and the StatusWriter that
// publishes it all to the status file. Every change is made in memory under one mutex; the file is
// written by the writer's thread, never on the thread that calls `log`.
// Thread-safety: every member function may be called from any thread.
// Errors: the constructor throws std::filesystem::filesystem_error when the status folder cannot be
// created; after that nothing throws into the caller: write failures become the status's `notice`.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

// #include <azops/detail/operation_run.hpp> — begin
// azops/detail/operation_run.hpp — one operation of a task as the Tracker sees it: which parser
// reads its output, where it stands (step, phase, detail, fraction done) and its ETA estimator.
//
// Owns: choosing the parser by operation name (docker_build → DockerStepParser, windows_boot →
// BootLogParser, benchmark → WaaLogParser; any other operation watches for a docker build and
// becomes docker_build when one shows up), turning parser events into ETA observations, and what
// the finished operation records in the history file.
// Thread-safety: none; the Tracker guards it with its mutex. Errors: never throws on output text;
// a failure the output itself reports is kept in `output_error()`.

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>


namespace azops::detail {

class OperationRun {
public:
    // `planned_steps`: the steps the program announced; more than the output's own (a boot log's 7,
    // then the program's wait for a server as step 8) leaves the output that share of the progress.
    OperationRun(std::string name, const History* history, double t0, EtaOptions eta_options = {},
                 int planned_steps = 0)
        : name_(std::move(name)), history_(history), eta_options_(eta_options), planned_steps_(std::max(0, planned_steps)) {
        if (name_ == "windows_boot") boot_.emplace();
        else if (name_ == "benchmark") waa_.emplace();
        else docker_.emplace();  // docker_build, and any other command to recognise a docker build in its output
        eta_.emplace(history_, history_key(), eta_options_);
        eta_->start(t0);
        started_ = t0;
    }

    const std::string& name() const noexcept { return name_; }
    int step() const noexcept { return step_; }
    int total_steps() const noexcept { return total_; }
    const std::string& phase() const noexcept { return phase_; }
    const std::string& detail() const noexcept { return detail_; }
    double fraction() const noexcept { return fraction_; }
    double started() const noexcept { return started_; }
    const std::optional<std::string>& output_error() const noexcept { return output_error_; }
    // Benchmark tasks passed and failed so far, once a benchmark's output has shown a task result.
    std::optional<std::pair<int, int>> task_results() const {
        if (!waa_ || waa_->tasks_done() == 0) return std::nullopt;
        return std::make_pair(waa_->successes(), waa_->failures());
    }
    // True when the output (rather than the program) says where the operation stands.
    bool read_from_output() const noexcept { return from_output_; }

    // One sanitised output line at time `t`; returns true when the operation's state changed.
    bool feed(std::string_view line, double t) {
        eta_->sign_of_life(t);
        if (docker_) return feed_docker(line, t);
        if (boot_) return feed_boot(line, t);
        if (waa_) return feed_waa(line, t);
        return false;
    }

    // The program says: step `step` of `total` started.
    void step_started(int step, int total, double t) {
        if (step_ > 0 && step > step_) eta_->step_finished(step_, t);
        total_ = std::max(0, total);
        step_ = std::max(0, step);
        eta_->step_started(step_, total_, t);
        if (total_ > 0) raise_fraction(static_cast<double>(std::max(0, step_ - 1)) / total_);
    }

    // The program says: `fraction` (0..1) of this operation is done.
    void progress(double fraction, double t) {
        raise_fraction(fraction);
        eta_->progress(fraction_, t);
    }

    void set_phase(std::string phase) { phase_ = std::move(phase); }
    void set_detail(std::string detail) { detail_ = std::move(detail); }

    EtaEstimate estimate(double now) const { return eta_->estimate(now); }
    std::optional<double> stalled_seconds(double now) const { return eta_->stalled_seconds(now); }
    std::optional<double> last_sign_of_life() const { return eta_->last_sign_of_life(); }

    // Records this finished (succeeded) operation in the history file, under its own name: its
    // per-step durations when every step was seen (adding up to its whole duration), else its
    // duration as one sample; a benchmark records each task under benchmark_per_task. Returns
    // what went wrong, if anything.
    std::optional<std::string> record(const std::filesystem::path& history_file, double ended) {
        HistoryFileResult result;
        if (waa_) {
            const std::vector<double> tasks = eta_->task_seconds();
            if (tasks.empty()) return std::nullopt;
            result = History::update_file(history_file, [&](History& h) {
                for (double s : tasks) h.record_task(benchmark_task_key, s);
            });
        } else if (const auto run = eta_->finished_run(ended)) {
            result = History::record_to_file(history_file, name_, run->step_seconds, run->cached_steps);
        } else if (total_ > 1) {
            result = History::record_task_to_file(history_file, name_, std::max(0.0, ended - started_));
        } else {
            result = History::record_to_file(history_file, name_, {std::max(0.0, ended - started_)});
        }
        if (!result.ok) return "history not updated: " + result.error;
        return std::nullopt;
    }

private:
    std::string history_key() const { return waa_ ? std::string(benchmark_task_key) : name_; }

    void raise_fraction(double f) { fraction_ = std::max(fraction_, std::clamp(f, 0.0, 1.0)); }

    bool feed_docker(std::string_view line, double t) {
        if (!docker_->feed(line, t)) return false;
        if (!docker_->is_docker_build()) return false;
        if (name_ != "docker_build") become_docker_build(t);
        from_output_ = true;
        for (const DockerStepEvent& e : docker_->take_events()) {
            using Kind = DockerStepEvent::Kind;
            if (e.step <= 0) continue;
            if (e.kind == Kind::step_started) eta_->step_started(e.step, e.total, t);
            else if (e.kind == Kind::step_cached) eta_->step_finished(e.step, t, true);
            else if (e.kind == Kind::step_finished || e.kind == Kind::step_failed) eta_->step_finished(e.step, t);
        }
        step_ = docker_->step();
        total_ = docker_->total_steps();
        phase_ = docker_->phase();
        detail_ = docker_->instruction();
        raise_fraction(docker_->progress_fraction());
        output_error_ = docker_->outcome() == BuildOutcome::failed
                            ? std::optional<std::string>(docker_->error().empty() ? "the docker build failed"
                                                                                  : docker_->error())
                            : std::nullopt;
        return true;
    }

    // A command's output turned out to be a docker build: from now on it is one, with that history.
    void become_docker_build(double t) {
        name_ = "docker_build";
        eta_.emplace(history_, name_, eta_options_);
        eta_->start(started_);
        eta_->sign_of_life(t);
    }

    bool feed_boot(std::string_view line, double t) {
        if (!boot_->feed(line)) return false;
        from_output_ = true;
        const int step = boot_->step();
        const int total = std::max(boot_->total_steps(), planned_steps_);
        if (step > step_) step_started(step, total, t);
        phase_ = boot_->phase_name();
        detail_ = boot_->detail();
        raise_fraction(boot_->progress_fraction() * boot_->total_steps() / total);
        output_error_ = boot_->error();
        return true;
    }

    bool feed_waa(std::string_view line, double t) {
        if (!waa_->feed(line)) return false;
        from_output_ = true;
        waa_->take_events();  // the counts below say all the estimator needs
        total_ = waa_->total_tasks();
        step_ = total_ > 0 ? std::min(total_, waa_->current_task_index()) : waa_->current_task_index();
        if (total_ > 0) eta_->task_progress(waa_->tasks_done(), total_, t);
        phase_ = waa_->phase_name();
        detail_ = waa_->detail();
        raise_fraction(waa_->progress_fraction());
        output_error_ = waa_->error();
        return true;
    }

    std::string name_;
    const History* history_;
    EtaOptions eta_options_;
    int planned_steps_;
    std::optional<DockerStepParser> docker_;
    std::optional<BootLogParser> boot_;
    std::optional<WaaLogParser> waa_;
    std::optional<EtaEstimator> eta_;
    double started_ = 0;
    int step_ = 0;
    int total_ = 0;
    std::string phase_;
    std::string detail_;
    double fraction_ = 0;
    bool from_output_ = false;
    std::optional<std::string> output_error_;
};

}  // namespace azops::detail
// #include <azops/detail/operation_run.hpp> — end

namespace azops {

using WallClock = std::function<std::chrono::system_clock::time_point()>;

// Where hourly rates come from, besides the built-in table. Errors in these files become the
// status's notice (the rate then stays as the table has it), never an exception.
struct CostOptions {
    std::string os = "linux";                       // the VM's OS: linux or windows
    std::vector<std::filesystem::path> price_pages;  // saved Azure Retail Prices API responses
    std::optional<std::filesystem::path> rate_file;  // {"rates": [{"vm_size": ..., "usd_per_hour": ...}]}
    std::optional<double> rate_override;             // one rate for whatever size, $/h
};

struct TrackerOptions {
    std::filesystem::path status_file = "benchmark_results/azure_ops_status.json";
    // Read at construction for ETAs; every operation that ends well records its durations there
    // under its own name (benchmark tasks under "benchmark_per_task"). None: no history.
    std::optional<std::filesystem::path> history_file;
    // The task's operations in order: those not started yet add their history average to the ETA
    // and weigh the task's progress.
    std::vector<std::string> planned_operations;
    CostOptions cost;
    // How estimates trust history and when silence is a stall: `eta.stall_min_seconds` (5 min by
    // default) is the least silence that sets `stalled_seconds`.
    EtaOptions eta;
    WallClock clock;                                // defaults to detail::coarse_now (the wall clock to a tick)
    std::size_t log_lines = 50;                     // lines kept in `log_tail`
    std::chrono::milliseconds min_write_interval{100};
    std::chrono::milliseconds heartbeat{2000};
    std::chrono::milliseconds stop_request_poll{250};  // how often `<status file>.cancel` is looked for
};

// What the program knows of its VM; unset fields keep their previous value.
struct VmInfo {
    std::optional<std::string> name;
    std::optional<std::string> size;
    std::optional<std::string> region;
    std::optional<std::string> ip;
    std::optional<std::string> state;
    std::optional<std::string> vnc_url;
};

// The last status document the writer produced, for servers that push it to viewers.
struct Published {
    std::uint64_t version = 0;
    std::string json;
};

namespace detail {

inline std::string random_token() {
    std::random_device entropy;  // /dev/urandom (getrandom) on Linux
    static constexpr std::string_view hex = "0123456789abcdef";
    std::string token;
    for (int i = 0; i < 6; ++i) {  // 192 bits
        const std::uint32_t word = entropy();
        for (int shift = 0; shift < 32; shift += 8) {
            const auto byte = static_cast<unsigned>((word >> shift) & 0xFFU);
            token += hex[byte >> 4];
            token += hex[byte & 0xFU];
        }
    }
    return token;
}

inline bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

inline double seconds_between(std::chrono::system_clock::time_point from, std::chrono::system_clock::time_point to) {
    return std::max(0.0, std::chrono::duration<double>(to - from).count());
}

// The wall clock to a few milliseconds (one kernel tick), read without a full timer read: the tracker
// stamps every logged line, and on a VM's clock source `system_clock::now()` alone can cost a fifth
// of a line's whole budget. Seconds-scale durations, ETAs and costs lose nothing to the tick.
inline std::chrono::system_clock::time_point coarse_now() noexcept {
#if defined(CLOCK_REALTIME_COARSE)
    timespec ts{};
    if (::clock_gettime(CLOCK_REALTIME_COARSE, &ts) == 0) {
        return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
    }
#endif
    return std::chrono::system_clock::now();
}

}  // namespace detail

class Tracker {
public:
    using Clock = std::chrono::system_clock;

    explicit Tracker(TrackerOptions options = {})
        : options_(std::move(options)),
          tail_(options_.log_lines),
          token_(detail::random_token()) {
        if (!options_.clock) options_.clock = [] { return detail::coarse_now(); };
        epoch_ = options_.clock();
        status_.status_file = absolute_path(options_.status_file);
        status_.started_at = iso8601_utc(epoch_);
        status_.state = "idle";
        load_history();
        load_rates();
        // A tracker killed while writing its token, or a server killed while asking for a stop,
        // leaves temporary files beside the status file; the status writer removes only its own.
        remove_stale_temp_files(token_file());
        remove_stale_temp_files(cancel_request_file());
        writer_ = std::make_unique<StatusWriter>(
            StatusWriterOptions{options_.status_file, options_.min_write_interval, options_.heartbeat,
                                options_.stop_request_poll},
            [this] { return render(); }, [this] { look_for_stop_request(); },
            [this](const AtomicWriteResult& r) { note_write_problem(r); });
        render();  // published at once: a server started right after this has a status to serve
    }

    Tracker(const Tracker&) = delete;
    Tracker& operator=(const Tracker&) = delete;

    // A task still running when its tracker goes away did not finish: say so in the final write.
    ~Tracker() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (status_.state == "running") {
                finish_locked("failed", std::string("the program ended before the task finished"));
            }
        }
        writer_.reset();
        remove_run_files();
    }

    // Starts the task: resets progress, writes the run token beside the status file.
    void begin(std::string task) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto now = options_.clock();
            started_ = now;
            status_.task = std::move(task);
            status_.state = "running";
            status_.started_at = iso8601_utc(now);
            status_.error.reset();
            status_.timeline.clear();
            status_.progress_pct = 0.0;
            status_.step = status_.total_steps = 0;
            status_.cancellable = static_cast<bool>(cancel_handler_);
            run_.reset();
            if (!vm_state_known_) cost_.set_state(VmState::unknown, seconds_at(now));
        }
        write_token_file();
        writer_->set_heartbeat(true);
        changed();
    }

    // Enters a new operation: the previous one ends succeeded (and is recorded in the history
    // file), and a new timeline entry opens. `total_steps` announces its steps; for an operation
    // read from its output (a boot log's 7 steps) a larger number keeps the rest for the program's
    // own later steps (`step(8, 8)`: waiting for a server), so the output alone never reaches 100 %.
    void operation(std::string name, int total_steps = 0) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto now = options_.clock();
            end_operation_locked(now, "succeeded");
            run_.emplace(name, history_ ? &*history_ : nullptr, seconds_at(now), options_.eta, total_steps);
            status_.operation = name;
            status_.phase.clear();
            status_.detail.clear();
            status_.step = 0;
            status_.total_steps = std::max(0, total_steps);
            status_.timeline.push_back(TimelineEntry{std::move(name), "running", iso8601_utc(now), std::nullopt, 0.0});
            operation_started_ = now;
            refresh_progress_locked();
        }
        changed();
    }

    void phase(std::string_view phase, std::string_view detail = {}) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.phase = sanitize_line(phase);
            if (!detail.empty()) status_.detail = sanitize_line(detail);
            if (run_) run_->set_phase(status_.phase);
        }
        changed();
    }

    // Step `step` of `total` inside the current operation (1-based).
    void step(int step, int total, std::string_view detail = {}) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.total_steps = std::max(0, total);
            status_.step = std::clamp(step, 0, std::max(status_.total_steps, step));
            if (!detail.empty()) status_.detail = sanitize_line(detail);
            current_run_locked().step_started(status_.step, status_.total_steps, now_seconds());
            refresh_progress_locked();
        }
        changed();
    }

    // Progress of the current operation, 0–100 (clamped; it never goes backwards). The task's
    // `progress_pct` weighs it with the planned operations.
    void progress(double pct) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            current_run_locked().progress(pct / 100.0, now_seconds());
            refresh_progress_locked();
        }
        changed();
    }

    // Results of a benchmark's tasks so far, for a program that reads them itself (a benchmark
    // operation's WAA output fills them on its own).
    void task_results(int succeeded, int failed) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.tasks_succeeded = std::max(0, succeeded);
            status_.tasks_failed = std::max(0, failed);
        }
        changed();
    }

    void detail(std::string_view text) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.detail = sanitize_line(text);
        }
        changed();
    }

    // One raw output line (without '\n'), of which `cut_bytes` were already dropped upstream
    // (LineSplitter's bound). Sanitised here and read by the current operation's parser; the file
    // is written later by the writer's thread. It ends a line being redrawn (see `log_redraw`).
    void log(std::string_view raw_line, std::size_t cut_bytes = 0) {
        take_raw(raw_line, cut_bytes, &Tracker::take_line_locked);
    }

    // A line that has not ended yet, as a terminal shows it now: a `\r` progress bar (wget's, pip's)
    // may take minutes to end. It shows as the last line of `log_tail` (with `log_partial` set), each
    // drawing replacing the one before, and the parser reads each drawing; the next line logged is
    // taken as its end and replaces it.
    void log_redraw(std::string_view raw_line, std::size_t cut_bytes = 0) {
        take_raw(raw_line, cut_bytes, &Tracker::take_drawing_locked);
    }

    // A chunk of a command's raw output, as one read of its pipe returned it: `splitter` (the
    // caller's, one per output stream) cuts it into lines, and each complete line is logged as by
    // `log` and a redrawn unterminated one as by `log_redraw`, all under one lock and one clock
    // reading, since they arrived at the same moment. The stream's last, unterminated line is the
    // caller's to log after the end
    // (`splitter.finish([&](std::string_view l, std::size_t cut) { tracker.log(l, cut); })`).
    void log_chunk(std::string_view bytes, LineSplitter& splitter) {
        std::string scratch;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const double t = now_seconds();
            splitter.feed(
                bytes,
                [&](std::string_view raw_line, std::size_t cut_bytes) {
                    take_line_locked(sanitize_line_into(raw_line, scratch, cut_bytes), t);
                },
                [&](std::string_view raw_line, std::size_t cut_bytes) {
                    take_drawing_locked(sanitize_line_into(raw_line, scratch, cut_bytes), t);
                });
        }
        writer_->notify();
    }

    // VM facts as they become known; a `state` change moves the billing (DESIGN.md's rule). After
    // the task ended, a VM known to be allocated still costs money: the cost goes on (and the file
    // keeps its heartbeat) until the VM is said to be deallocated.
    void set_vm(const VmInfo& vm) {
        bool heartbeat = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto assign = [](std::optional<std::string>& field, const std::optional<std::string>& value) {
                if (value) field = value->empty() ? std::nullopt : std::optional<std::string>(sanitize_line(*value));
            };
            assign(status_.vm_name, vm.name);
            assign(status_.vm_size, vm.size);
            assign(status_.region, vm.region);
            assign(status_.vm_ip, vm.ip);
            assign(status_.vm_state, vm.state);
            assign(status_.vnc_url, vm.vnc_url);
            if (vm.size || vm.region) requote_rate_locked();
            if (vm.state) {
                vm_state_known_ = parse_vm_state(*vm.state) != VmState::unknown;
                cost_.set_state(parse_vm_state(*vm.state), now_seconds());
            }
            heartbeat = status_.state == "running" || billed_after_end_locked();
        }
        writer_->set_heartbeat(heartbeat);
        changed();
    }

    void notice(std::optional<std::string> text) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.notice = text ? std::optional<std::string>(sanitize_line(*text)) : std::nullopt;
        }
        changed();
    }

    // When an idle VM will be deallocated (none: no countdown).
    void set_idle_deallocate_at(std::optional<Clock::time_point> when) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.idle_deallocate_at = when ? std::optional<std::string>(iso8601_utc(*when)) : std::nullopt;
        }
        changed();
    }

    // The task ended well — unless the output said otherwise (a docker build that failed inside a
    // command that still exited 0): then it ends failed with the output's own error.
    void succeed() {
        std::optional<std::string> output_error;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (run_ && run_->output_error()) output_error = run_->output_error();
        }
        if (output_error) finish("failed", std::move(output_error));
        else finish("succeeded", std::nullopt);
    }
    void fail(std::string error) { finish("failed", std::move(error)); }
    void cancel(std::string reason = "stopped on request") { finish("cancelled", std::move(reason)); }

    // Who to call when a viewer asks the task to stop (the page's Stop button, a `.cancel` file).
    // The handler runs on the thread that received the request and must only start the stop.
    void on_cancel(std::function<void()> handler) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            cancel_handler_ = std::move(handler);
            status_.cancellable = cancel_handler_ && status_.state == "running";
        }
        changed();
    }

    // Asks the task to stop; false when no stop can be honoured now.
    bool request_cancel() {
        std::function<void()> handler;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!status_.cancellable || !cancel_handler_) return false;
            handler = cancel_handler_;
            status_.notice = "stop requested";
        }
        changed();
        handler();
        return true;
    }

    bool cancellable() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return status_.cancellable;
    }

    const std::string& token() const noexcept { return token_; }

    OpsStatus snapshot() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return snapshot_locked();
    }

    Published published() const {
        std::lock_guard<std::mutex> lock(publish_mutex_);
        return published_;
    }

    // Waits until a document newer than `seen` is published; false on timeout.
    bool wait_for_publish(std::uint64_t seen, std::chrono::milliseconds timeout) const {
        std::unique_lock<std::mutex> lock(publish_mutex_);
        return published_cv_.wait_for(lock, timeout, [&] { return published_.version != seen; });
    }

    // Writes the current status now, on this thread.
    void flush() { writer_->flush(); }

    StatusWriterStats writer_stats() const { return writer_->stats(); }

    const std::filesystem::path& status_file() const noexcept { return options_.status_file; }
    std::filesystem::path token_file() const { return sidecar(".token"); }
    std::filesystem::path cancel_request_file() const { return sidecar(".cancel"); }

private:
    static std::string absolute_path(const std::filesystem::path& p) {
        std::error_code ec;
        const auto abs = std::filesystem::absolute(p, ec);
        return (ec ? p : abs.lexically_normal()).string();
    }

    std::filesystem::path sidecar(const char* suffix) const {
        std::filesystem::path p = options_.status_file;
        p += suffix;
        return p;
    }

    void changed() { writer_->notify(); }

    // Seconds on the task's clock since this tracker was made: the time base of ETA and billing.
    double seconds_at(Clock::time_point t) const { return std::chrono::duration<double>(t - epoch_).count(); }
    double now_seconds() const { return seconds_at(options_.clock()); }

    void load_history() {
        if (!options_.history_file) return;
        history_ = History::load(*options_.history_file);
        if (!history_->warnings().empty()) status_.notice = sanitize_line(history_->warnings().front());
    }

    void load_rates() {
        rates_ = RateTable::built_in();
        try {
            if (!options_.cost.price_pages.empty()) rates_.load_retail_prices(options_.cost.price_pages);
            if (options_.cost.rate_file) rates_.load_override_file(*options_.cost.rate_file);
        } catch (const std::exception& e) {
            status_.notice = sanitize_line(std::string("prices not loaded: ") + e.what());
        }
        os_ = parse_os_type(options_.cost.os).value_or(OsType::linux_os);
        requote_rate_locked();
    }

    void requote_rate_locked() {
        const std::string size = status_.vm_size.value_or("");
        const std::string region = status_.region.value_or(std::string(default_region));
        cost_.set_rate(rates_.quote(size, os_, region));
        if (options_.cost.rate_override) cost_.set_rate_override(*options_.cost.rate_override, "rate given by hand");
    }

    // Without an operation, steps and progress belong to one named after the task.
    detail::OperationRun& current_run_locked() {
        if (!run_) run_.emplace(status_.operation, history_ ? &*history_ : nullptr, now_seconds(), options_.eta);
        return *run_;
    }

    // Sanitises a raw line outside the lock, then hands it to `take` under it.
    void take_raw(std::string_view raw_line, std::size_t cut_bytes, void (Tracker::*take)(std::string_view, double)) {
        std::string scratch;
        const std::string_view clean = sanitize_line_into(raw_line, scratch, cut_bytes);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            (this->*take)(clean, now_seconds());
        }
        writer_->notify();
    }

    // A sanitised line that ended: it replaces the drawing of itself, if one shows.
    void take_line_locked(std::string_view clean, double t) {
        if (!drawing_) {
            read_line_locked(clean, t);
            tail_.push(clean);
            return;
        }
        drawing_ = false;
        if (clean != tail_.last()) read_line_locked(clean, t);  // the parser has read its last drawing
        tail_.replace_last(clean);
    }

    // A sanitised drawing of a line that has not ended.
    void take_drawing_locked(std::string_view clean, double t) {
        if (clean.empty() || (drawing_ && clean == tail_.last())) return;
        read_line_locked(clean, t);
        if (drawing_) {
            tail_.replace_last(clean);
        } else {
            tail_.push(clean);
            drawing_ = true;
        }
    }

    void read_line_locked(std::string_view clean, double t) {
        if (run_ && run_->feed(clean, t)) take_operation_state_locked();
    }

    // The parser moved: copy where the operation stands into the status.
    void take_operation_state_locked() {
        const detail::OperationRun& run = *run_;
        if (run.name() != status_.operation) {
            status_.operation = run.name();
            if (!status_.timeline.empty() && !status_.timeline.back().ended_at) status_.timeline.back().name = run.name();
        }
        status_.step = run.step();
        status_.total_steps = run.total_steps();
        status_.phase = run.phase();
        status_.detail = run.detail();
        if (const auto results = run.task_results()) {
            status_.tasks_succeeded = results->first;
            status_.tasks_failed = results->second;
        }
        refresh_progress_locked();
    }

    // The planned operations' weights: their history averages when all are known, else equal.
    std::vector<double> planned_weights_locked() const {
        std::vector<double> weights;
        for (const auto& op : options_.planned_operations) {
            const auto past = history_ ? history_->operation(op) : std::nullopt;
            if (!past || !past->avg_seconds || *past->avg_seconds <= 0) {
                weights.assign(options_.planned_operations.size(), 1.0);
                return weights;
            }
            weights.push_back(*past->avg_seconds);
        }
        return weights;
    }

    // The task's progress: the current operation's fraction, weighted among the planned ones.
    void refresh_progress_locked() {
        const double fraction = run_ ? run_->fraction() : 0.0;
        double pct = 100.0 * fraction;
        const auto& plan = options_.planned_operations;
        const auto at = run_ ? std::find(plan.begin(), plan.end(), run_->name()) : plan.end();
        if (at != plan.end()) {
            const std::vector<double> weights = planned_weights_locked();
            const auto index = static_cast<std::size_t>(at - plan.begin());
            double done = 0;
            double total = 0;
            for (std::size_t i = 0; i < weights.size(); ++i) {
                total += weights[i];
                if (i < index) done += weights[i];
            }
            pct = 100.0 * (done + weights[index] * fraction) / total;
        }
        status_.progress_pct = std::max(status_.progress_pct, std::clamp(pct, 0.0, 100.0));
    }

    // What history says the planned operations after the current one take, in seconds.
    double rest_of_plan_seconds_locked() const {
        const auto& plan = options_.planned_operations;
        auto at = run_ ? std::find(plan.begin(), plan.end(), run_->name()) : plan.begin();
        if (at != plan.end() && run_) ++at;
        double rest = 0;
        for (; at != plan.end(); ++at) {
            const auto past = history_ ? history_->operation(*at) : std::nullopt;
            if (past && past->avg_seconds) rest += *past->avg_seconds;
        }
        return rest;
    }

    void end_operation_locked(Clock::time_point now, const char* state) {
        if (status_.timeline.empty() || status_.timeline.back().ended_at) return;
        auto& entry = status_.timeline.back();
        entry.state = state;
        entry.ended_at = iso8601_utc(now);
        entry.duration_seconds = detail::seconds_between(operation_started_, now);
        if (run_ && std::string_view(state) == "succeeded") {
            if (options_.history_file) {
                if (auto problem = run_->record(*options_.history_file, seconds_at(now))) status_.notice = *problem;
            }
        }
    }

    void finish(const char* state, std::optional<std::string> error) {
        bool heartbeat = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            finish_locked(state, std::move(error));
            heartbeat = billed_after_end_locked();
        }
        writer_->set_heartbeat(heartbeat);
        writer_->flush();
    }

    // The task has ended, but its VM is known to be allocated: it is still billed.
    bool billed_after_end_locked() const {
        return finished_ && vm_state_known_ && is_billed(cost_.state());
    }

    void finish_locked(const char* state, std::optional<std::string> error) {
        const auto now = options_.clock();
        end_operation_locked(now, state);
        status_.state = state;
        status_.cancellable = false;
        status_.error = error ? std::optional<std::string>(sanitize_line(*error)) : std::nullopt;
        if (status_.state == "succeeded") status_.progress_pct = 100.0;
        finished_ = now;
    }

    void fill_estimates_locked(OpsStatus& s, double t) const {
        s.rate_known = cost_.rate_known();
        s.rate_source = cost_.rate_known() ? cost_.rate_source() : cost_.rate_message();
        s.hourly_rate_usd = cost_.hourly_rate();
        s.billing_assumed = cost_.billing_assumed();
        s.cost_usd = cost_.cost_until(t);
        if (s.state != "running" || !run_) return;
        const EtaEstimate estimate = run_->estimate(t);
        const double rest = rest_of_plan_seconds_locked();
        if (estimate.seconds) {
            s.eta_seconds = *estimate.seconds + rest;
            s.eta_source = estimate.source;
            if (estimate.range) {
                s.eta_low_seconds = estimate.range->low + rest;
                s.eta_high_seconds = estimate.range->high + rest;
            }
        }
        s.projected_cost_usd = cost_.projected_cost(t, s.eta_seconds);
        s.stalled_seconds = run_->stalled_seconds(t);
        if (s.stalled_seconds) s.stalled_cost_usd = cost_.cost_between(t - *s.stalled_seconds, t);
    }

    OpsStatus snapshot_locked() const {
        OpsStatus s = status_;
        if (write_problem_) s.notice = write_problem_;  // while the file cannot be written, that comes first
        const auto now = options_.clock();
        s.log_tail = tail_.lines();
        s.log_partial = drawing_;
        s.updated_at = iso8601_utc(now);
        s.elapsed_seconds = started_ ? detail::seconds_between(*started_, finished_.value_or(now)) : 0.0;
        if (!s.timeline.empty() && !s.timeline.back().ended_at) {
            s.timeline.back().duration_seconds = detail::seconds_between(operation_started_, now);
        }
        // A VM whose state is known is billed by its state, also after the task; an assumed one only during it.
        fill_estimates_locked(s, seconds_at(vm_state_known_ ? now : finished_.value_or(now)));
        return s;
    }

    std::string render() {
        std::string text;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            text = to_json_text(snapshot_locked());
        }
        {
            std::lock_guard<std::mutex> lock(publish_mutex_);
            if (text != published_.json) {
                published_.json = text;
                ++published_.version;
            }
        }
        published_cv_.notify_all();
        return text;
    }

    void write_token_file() {
        const auto result = write_file_atomically(token_file(), token_ + "\n", AtomicWriteOptions{false, 0600});
        if (!result.ok) notice(result.error);  // lasting: without the token no other process can ask for a stop
    }

    // Not const, though it changes no member: the files are the run's, and so part of its state.
    void remove_run_files() noexcept {  // NOLINT(readability-make-member-function-const)
        std::error_code ec;
        std::filesystem::remove(token_file(), ec);
        std::filesystem::remove(cancel_request_file(), ec);
    }

    // A server in another process asks for a stop by leaving `<status file>.cancel` with the token.
    void look_for_stop_request() {
        std::ifstream in(cancel_request_file());
        if (!in) return;
        std::string presented;
        std::getline(in, presented);
        in.close();
        std::error_code ec;
        std::filesystem::remove(cancel_request_file(), ec);
        if (detail::constant_time_equal(presented, token_)) {
            if (!request_cancel()) notice(std::string("a stop was requested, but the task cannot be stopped now"));
        } else {
            notice(std::string("ignored a stop request that did not carry this run's token"));
        }
    }

    // Kept apart from other notices: a write problem hides them only while it lasts; once the file
    // can be written again (the writer says so with an `ok` result and no error) they show again.
    void note_write_problem(const AtomicWriteResult& result) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (result.error.empty()) write_problem_.reset();
        else write_problem_ = sanitize_line(result.error);
    }

    TrackerOptions options_;
    mutable std::mutex mutex_;  // guards everything below up to publish_mutex_
    OpsStatus status_;
    LogTail tail_;
    bool drawing_ = false;  // the tail's last line is a drawing of a line that has not ended (the parser read it)
    Clock::time_point epoch_{};
    std::optional<Clock::time_point> started_;
    std::optional<Clock::time_point> finished_;
    Clock::time_point operation_started_{};
    std::optional<History> history_;
    std::optional<detail::OperationRun> run_;
    RateTable rates_;
    OsType os_ = OsType::linux_os;
    CostModel cost_;
    bool vm_state_known_ = false;
    std::function<void()> cancel_handler_;
    std::optional<std::string> write_problem_;  // why the status file cannot be written as it should
    const std::string token_;

    mutable std::mutex publish_mutex_;
    mutable std::condition_variable published_cv_;
    Published published_;

    std::unique_ptr<StatusWriter> writer_;  // last: its thread calls back into the members above
};

}  // namespace azops
// #include <azops/tracker.hpp> — end
// #include <azops/azure.hpp> — begin
// azops/azure.hpp — the Azure side, through the `az` command and its JSON output.
//
// Owns: reading a VM's power state, public IP, size, region and name from the JSON that
// `az vm get-instance-view`, `az vm show -d` and `az vm create` print (pure functions); `AzCli`,
// which runs `az` with a timeout, stdout and stderr captured apart (az prints warnings on stderr even
// when it succeeds), and turns every failure into one clear sentence; the argv of `az vm create`;
// `VmStatePoller`, which asks for the VM's state on a background thread; `probe_vnc`, which tells
// whether the noVNC viewer's tunnel answers.
// Thread-safety: the parsers and `probe_vnc` are pure; a const `AzCli` may run commands from several
// threads at once; `AzCancelToken::cancel` may be called from any thread or a signal handler;
// `VmStatePoller`'s members may be called from any thread; its callback runs on the poller's own
// thread and must not destroy the poller.
// Errors: nothing here throws into the caller except std::bad_alloc and the constructors of
// `AzCancelToken` and `VmStatePoller` (std::system_error when the system has no pipe or thread left,
// at setup). A command that fails — az missing, not logged in, VM not found, timeout, output that is
// not what az prints — gives state "unknown" and a message in `error`.

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>


namespace azops {

// A VM as az names it.
struct AzureVm {
    std::string resource_group;
    std::string name;
};

// What azops knows of a VM at one moment. `state` is one of DESIGN.md's `vm_state` words; it is
// "unknown" whenever `error` is set.
struct AzureVmStatus {
    std::string state = "unknown";
    std::optional<std::string> ip;  // the first public IP; absent when the VM has none (deallocated)
    std::optional<std::string> size;
    std::optional<std::string> region;
    std::optional<std::string> name;
    std::optional<std::string> error;
};

// Why a command failed, for callers that branch on it; `AzCommandResult::error` says it in words.
enum class AzFailure {
    none,
    cannot_start,       // az is not installed, or the path given is not an executable
    not_logged_in,      // no login, or it expired
    not_found,          // the VM or its resource group does not exist
    timed_out,          // az did not finish in time and was stopped
    cancelled,          // the caller stopped it (AzCancelToken)
    exited,             // any other non-zero exit
    unexpected_output,  // exit code 0, but not the JSON that command prints
};

// One run of az.
struct AzCommandResult {
    int exit_code = -1;  // -1 when az did not start, timed out or was cancelled
    std::string stdout_text;
    std::string stderr_text;
    AzFailure failure = AzFailure::none;
    std::optional<std::string> error;

    bool ok() const noexcept { return failure == AzFailure::none; }
};

// What `az vm create` needs. The defaults are the WAA setup's: Ddsv5 sizes run nested
// virtualisation (needed for Windows in QEMU) and have a large temp disk; 4 vCPU sizes run out of
// memory during the benchmark.
struct VmCreateSpec {
    AzureVm vm;
    std::string size = "Standard_D8ds_v5";
    std::string location = "eastus";
    std::string image = "Ubuntu2204";
    std::string admin_user = "azureuser";
    // The image's 30 GB disk does not hold the WAA image build and a Windows disk; 128 GB does.
    int os_disk_gb = 128;
};

struct AzVmCreateResult {
    AzCommandResult command;
    AzureVmStatus vm;
};

namespace detail::az {

using text::lower_ascii;
using text::trim_space;

inline bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) noexcept {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (lower_ascii(text[i]) != lower_ascii(prefix[i])) return false;
    }
    return true;
}

// At most `limit` characters of what az printed, on one line (each run of blanks and control
// characters becomes one space), never cut inside a UTF-8 sequence, and valid UTF-8 (it goes into
// the status file).
inline std::string preview(std::string_view text, std::size_t limit = 200) {
    std::string out;
    std::size_t chars = 0;
    bool blank_pending = false;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte == 0x7F) {
            blank_pending = !out.empty();
            continue;
        }
        if ((byte & 0xC0) != 0x80) {  // the first byte of a character
            if (chars + (blank_pending ? 1 : 0) >= limit) return out + "\xE2\x80\xA6";  // "…"
            if (blank_pending) out += ' ';
            chars += blank_pending ? 2 : 1;
            blank_pending = false;
        }
        out += c;
    }
    return out.empty() ? "(nothing)" : sanitize_line(out);
}

inline std::string unexpected_output_message(std::string_view printed) {
    return "az printed something unexpected: " + preview(printed);
}

inline AzureVmStatus failed_status(std::string message) {
    AzureVmStatus status;
    status.error = std::move(message);
    return status;
}

inline const nlohmann::json* member(const nlohmann::json& object, const char* key) {
    if (!object.is_object()) return nullptr;
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

inline std::optional<std::string> text_member(const nlohmann::json& object, const char* key) {
    const nlohmann::json* value = member(object, key);
    if (value == nullptr || !value->is_string()) return std::nullopt;
    std::string text = value->get<std::string>();
    if (text.empty()) return std::nullopt;
    return text;
}

// `show -d` joins several addresses with commas ("203.0.113.47,203.0.113.48").
inline std::optional<std::string> first_address(const std::optional<std::string>& list) {
    if (!list) return std::nullopt;
    const std::string_view first = trim_space(std::string_view(*list).substr(0, list->find(',')));
    if (first.empty()) return std::nullopt;
    return std::string(first);
}

// ".../providers/Microsoft.Compute/virtualMachines/waa-eval-vm" → "waa-eval-vm".
inline std::optional<std::string> name_from_id(const std::optional<std::string>& id) {
    if (!id) return std::nullopt;
    const std::string name = id->substr(id->rfind('/') + 1);
    if (name.empty()) return std::nullopt;
    return name;
}

inline void read_common_fields(const nlohmann::json& vm, AzureVmStatus& status) {
    if (const nlohmann::json* hardware = member(vm, "hardwareProfile")) status.size = text_member(*hardware, "vmSize");
    status.region = text_member(vm, "location");
    status.name = text_member(vm, "name");
}

}  // namespace detail::az

// The vm_state word for a power state as az spells it: "PowerState/running" (instance view codes),
// "VM running" (`show -d`'s powerState, displayStatus) or a bare "running". Anything else is
// "unknown", so a state Azure adds later is never mistaken for one that is billed differently.
inline std::string vm_state_from_power_code(std::string_view code) {
    code = detail::az::trim_space(code);
    for (std::string_view prefix : {std::string_view("PowerState/"), std::string_view("VM ")}) {
        if (detail::az::starts_with_ignoring_case(code, prefix)) {
            code.remove_prefix(prefix.size());
            break;
        }
    }
    for (std::string_view word : {"running", "starting", "stopping", "stopped", "deallocating", "deallocated"}) {
        if (code.size() == word.size() && detail::az::starts_with_ignoring_case(code, word)) return std::string(word);
    }
    return "unknown";
}

// `az vm get-instance-view -g RG -n VM -o json`: the VM object with `instanceView.statuses[]`.
// It never carries an address; `AzCli::vm_status` asks `show -d` for that. A VM still being created
// may have no PowerState status yet: its state is "unknown", without an error.
inline AzureVmStatus parse_instance_view(std::string_view json_text) {
    const auto vm = nlohmann::json::parse(json_text, nullptr, false);
    const nlohmann::json* view = vm.is_discarded() ? nullptr : detail::az::member(vm, "instanceView");
    const nlohmann::json* statuses = view == nullptr ? nullptr : detail::az::member(*view, "statuses");
    if (statuses == nullptr || !statuses->is_array()) {
        return detail::az::failed_status(detail::az::unexpected_output_message(json_text));
    }
    AzureVmStatus status;
    for (const auto& entry : *statuses) {
        const auto code = detail::az::text_member(entry, "code");
        if (code && detail::az::starts_with_ignoring_case(*code, "PowerState/")) {
            status.state = vm_state_from_power_code(*code);
        }
    }
    detail::az::read_common_fields(vm, status);
    return status;
}

// `az vm show -d -g RG -n VM -o json`: the VM object with `powerState`, `publicIps`, `privateIps`.
inline AzureVmStatus parse_vm_show(std::string_view json_text) {
    const auto vm = nlohmann::json::parse(json_text, nullptr, false);
    // Without -d there is no powerState key at all; that is not the output this reads.
    const nlohmann::json* power = vm.is_discarded() ? nullptr : detail::az::member(vm, "powerState");
    if (power == nullptr) return detail::az::failed_status(detail::az::unexpected_output_message(json_text));
    AzureVmStatus status;
    if (power->is_string()) status.state = vm_state_from_power_code(power->get<std::string>());
    status.ip = detail::az::first_address(detail::az::text_member(vm, "publicIps"));
    detail::az::read_common_fields(vm, status);
    return status;
}

// `az vm create ... -o json`: `publicIpAddress`, `powerState`, `location` and the VM's `id` (there
// is neither `name` nor the size).
inline AzureVmStatus parse_vm_create(std::string_view json_text) {
    const auto vm = nlohmann::json::parse(json_text, nullptr, false);
    if (vm.is_discarded() || !vm.is_object() || (!vm.contains("publicIpAddress") && !vm.contains("powerState"))) {
        return detail::az::failed_status(detail::az::unexpected_output_message(json_text));
    }
    AzureVmStatus status;
    if (const auto power = detail::az::text_member(vm, "powerState")) status.state = vm_state_from_power_code(*power);
    status.ip = detail::az::first_address(detail::az::text_member(vm, "publicIpAddress"));
    status.region = detail::az::text_member(vm, "location");
    status.name = detail::az::name_from_id(detail::az::text_member(vm, "id"));
    return status;
}

// The argv of `az vm create` for `spec`, starting with `az_path`: printed by a dry run, run by
// `AzCli::create`. `-o json` because a user's `az config` may set another output format.
inline std::vector<std::string> create_command(const VmCreateSpec& spec, std::string_view az_path = "az") {
    return {std::string(az_path), "vm", "create", "-g", spec.vm.resource_group, "-n", spec.vm.name,
            "--image", spec.image, "--size", spec.size, "--location", spec.location,
            "--os-disk-size-gb", std::to_string(spec.os_disk_gb), "--admin-username", spec.admin_user, "--generate-ssh-keys", "--public-ip-sku", "Standard",
            "-o", "json"};
}

// A command line a POSIX shell reads back as the same argv, for printing.
inline std::string format_command(const std::vector<std::string>& argv) {
    const auto plain = [](const std::string& word) {
        return !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || (c != '\0' && std::strchr("@%+=:,./_-", c) != nullptr);
        });
    };
    std::string line;
    for (const auto& word : argv) {
        if (!line.empty()) line += ' ';
        if (plain(word)) {
            line += word;
            continue;
        }
        line += '\'';
        for (char c : word) line += (c == '\'') ? std::string("'\\''") : std::string(1, c);
        line += '\'';
    }
    return line;
}

// A one-shot stop signal for commands in flight: once `cancel` is called, every run that watches this
// token kills its az and returns AzFailure::cancelled, and later runs stop at once.
class AzCancelToken {
public:
    AzCancelToken() {
        if (::pipe2(fds_.data(), O_CLOEXEC | O_NONBLOCK) != 0) {
            throw std::system_error(errno, std::generic_category(), "cannot create a pipe for cancelling az");
        }
    }
    ~AzCancelToken() {
        ::close(fds_[0]);
        ::close(fds_[1]);
    }
    AzCancelToken(const AzCancelToken&) = delete;
    AzCancelToken& operator=(const AzCancelToken&) = delete;

    // Async-signal-safe: it only writes one byte, which stays in the pipe so every waiter sees it.
    void cancel() const noexcept {
        const char byte = 1;
        [[maybe_unused]] const ssize_t n = ::write(fds_[1], &byte, 1);
    }

    bool cancelled() const noexcept {
        pollfd p{fds_[0], POLLIN, 0};
        return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
    }

    // Readable once cancelled, for poll().
    int wait_fd() const noexcept { return fds_[0]; }

private:
    std::array<int, 2> fds_{-1, -1};
};

namespace detail::az {

struct CapturedRun {
    int spawn_errno = 0;  // why the child could not start; 0 when it did
    bool timed_out = false;
    bool cancelled = false;
    int exit_code = -1;
    std::string out;
    std::string err;
};

// The child and the read ends of its pipes; whatever happens, no az is left running or unreaped.
struct CapturedChild {
    pid_t pid = -1;    // until reaped
    pid_t group = -1;  // the child's process group: az is a script that starts python
    int out = -1;
    int err = -1;

    CapturedChild() = default;
    CapturedChild(const CapturedChild&) = delete;
    CapturedChild& operator=(const CapturedChild&) = delete;
    // Only while the leader is unreaped (or members still hold the pipes) is the group id surely
    // still ours: a finished group's id may already name another process group.
    ~CapturedChild() {
        detail::close_fd(out);
        detail::close_fd(err);
        if (pid > 0) {
            kill_group();
            reap_blocking();
        }
    }

    void kill_group() const noexcept {
        if (group > 0) ::kill(-group, SIGKILL);
    }

    std::optional<int> try_reap() noexcept {
        int wstatus = 0;
        const pid_t r = ::waitpid(pid, &wstatus, WNOHANG);
        if (r == 0 || (r < 0 && errno == EINTR)) return std::nullopt;
        pid = -1;
        return r < 0 ? -1 : detail::exit_status_from_wait(wstatus).code;
    }

    int reap_blocking() noexcept {
        int wstatus = 0;
        pid_t r;
        while ((r = ::waitpid(pid, &wstatus, 0)) < 0 && errno == EINTR) {
        }
        pid = -1;
        return r < 0 ? -1 : detail::exit_status_from_wait(wstatus).code;
    }
};

// The inherited environment with `overrides` put in place of (or beside) the variables they name.
inline std::vector<std::string> environment_with(const std::vector<std::pair<std::string, std::string>>& overrides) {
    std::vector<std::string> env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view text(*entry);
        const std::string_view name = text.substr(0, text.find('='));
        const bool replaced = std::any_of(overrides.begin(), overrides.end(),
                                          [&](const auto& o) { return o.first == name; });
        if (!replaced) env.emplace_back(text);
    }
    for (const auto& [name, value] : overrides) env.emplace_back(name).append("=").append(value);
    return env;
}

inline int spawn_captured(const std::vector<std::string>& argv, const std::vector<std::string>& env, int out_fd,
                          int err_fd, pid_t& pid) {
    detail::SpawnSetup setup;
    posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&setup.actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&setup.actions, err_fd, 2);
    posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);
    // A program that embeds azops may ignore SIGPIPE or block signals; az must not inherit that.
    const short flags = setup.reset_signals();
    posix_spawnattr_setpgroup(&setup.attr, 0);
    posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETPGROUP | flags);
    std::vector<char*> args = detail::c_argv(argv);
    std::vector<char*> envp = detail::c_argv(env);
    return posix_spawnp(&pid, args[0], &setup.actions, &setup.attr, args.data(), envp.data());
}

// Reads whatever is ready on `fd` into `sink`; closes `fd` at end of file.
inline void read_ready(int& fd, short revents, std::string& sink) {
    if (fd < 0 || (revents & (POLLIN | POLLHUP | POLLERR)) == 0) return;
    std::array<char, 16384> buffer;
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) sink.append(buffer.data(), static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) detail::close_fd(fd);
}

// Runs argv with stdin from /dev/null, stdout and stderr captured apart, until it has exited and
// its output is read, `timeout` passes, or `cancel_fd` (-1: none) becomes readable.
inline CapturedRun run_captured(const std::vector<std::string>& argv,
                                const std::vector<std::pair<std::string, std::string>>& environment,
                                std::chrono::milliseconds timeout, int cancel_fd) {
    using Clock = std::chrono::steady_clock;
    CapturedRun run;
    CapturedChild child;
    std::array<int, 2> out{};
    std::array<int, 2> err{};
    if (::pipe2(out.data(), O_CLOEXEC) != 0) {
        run.spawn_errno = errno;
        return run;
    }
    child.out = out[0];
    if (::pipe2(err.data(), O_CLOEXEC) != 0) {
        run.spawn_errno = errno;
        ::close(out[1]);
        return run;
    }
    child.err = err[0];
    run.spawn_errno = spawn_captured(argv, environment_with(environment), out[1], err[1], child.pid);
    ::close(out[1]);
    ::close(err[1]);
    if (run.spawn_errno != 0) {
        child.pid = -1;
        return run;
    }
    child.group = child.pid;

    const auto deadline = Clock::now() + timeout;
    std::optional<Clock::time_point> drain_deadline;
    std::optional<int> exit_code;
    while (!exit_code || child.out >= 0 || child.err >= 0) {
        const auto now = Clock::now();
        if (now >= deadline) {
            run.timed_out = true;
            return run;  // ~CapturedChild kills the group and reaps
        }
        // The leader is gone but something it started still holds the pipes (so the group lives on).
        if (drain_deadline && now >= *drain_deadline) {
            child.kill_group();
            break;
        }
        const bool pipes_open = child.out >= 0 || child.err >= 0;
        const auto slice = std::min<Clock::duration>(deadline - now, pipes_open ? std::chrono::milliseconds(100)
                                                                                : std::chrono::milliseconds(5));
        std::array<pollfd, 3> fds{{{child.out, POLLIN, 0}, {child.err, POLLIN, 0}, {cancel_fd, POLLIN, 0}}};
        const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(slice).count();
        if (::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(wait_ms, 1))) < 0 && errno != EINTR) {
            run.spawn_errno = errno;
            return run;
        }
        if ((fds[2].revents & POLLIN) != 0) {
            run.cancelled = true;
            return run;
        }
        read_ready(child.out, fds[0].revents, run.out);
        read_ready(child.err, fds[1].revents, run.err);
        if (!exit_code) {
            exit_code = child.try_reap();
            if (exit_code) drain_deadline = Clock::now() + std::chrono::milliseconds(500);
        }
    }
    run.exit_code = *exit_code;
    return run;
}

inline std::string describe_duration(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
    return std::to_string(d.count()) + " ms";
}

inline std::string missing_message(std::string_view az_path) {
    if (az_path.find('/') != std::string_view::npos) {
        return "the Azure CLI was not found at " + std::string(az_path) + "; install it or pass --az PATH";
    }
    return "the Azure CLI (" + std::string(az_path) + ") was not found on PATH; install it or pass --az PATH";
}

// The line of az's stderr that says what went wrong: the first that is not a warning.
inline std::string stderr_reason(std::string_view err) {
    while (!err.empty()) {
        const auto end = err.find('\n');
        std::string_view line = trim_space(err.substr(0, end));
        err = end == std::string_view::npos ? std::string_view() : err.substr(end + 1);
        if (line.empty() || starts_with_ignoring_case(line, "WARNING:")) continue;
        if (starts_with_ignoring_case(line, "ERROR:")) line = trim_space(line.substr(6));
        return preview(line);
    }
    return {};
}

inline void classify(const CapturedRun& run, std::string_view az_path, std::chrono::milliseconds timeout,
                     AzCommandResult& result) {
    const auto fail = [&](AzFailure failure, std::string message) {
        result.failure = failure;
        result.error = std::move(message);
    };
    if (run.spawn_errno == ENOENT) return fail(AzFailure::cannot_start, missing_message(az_path));
    if (run.spawn_errno == EACCES) {
        return fail(AzFailure::cannot_start, "the Azure CLI at " + std::string(az_path) +
                                                 " cannot be run (permission denied); install it or pass --az PATH");
    }
    if (run.spawn_errno != 0) {
        return fail(AzFailure::cannot_start, "cannot run the Azure CLI (" + std::string(az_path) +
                                                 "): " + std::generic_category().message(run.spawn_errno));
    }
    if (run.cancelled) return fail(AzFailure::cancelled, "az was stopped before it answered");
    if (run.timed_out) {
        return fail(AzFailure::timed_out, "az did not answer within " + describe_duration(timeout) +
                                              " and was stopped; check the network, or run the same az command by hand");
    }
    if (run.exit_code == 0) return;
    const std::string_view err = run.err;
    // "Please run 'az login' to setup account." or, once a login expires, "...please run: az login --scope ...".
    if (err.find("az login") != std::string_view::npos) {
        return fail(AzFailure::not_logged_in, "not logged in to Azure (or the login expired): run 'az login', then try again");
    }
    const std::string reason = stderr_reason(err);
    if (err.find("ResourceNotFound") != std::string_view::npos || err.find("ResourceGroupNotFound") != std::string_view::npos) {
        return fail(AzFailure::not_found, "not found on Azure: " + reason);
    }
    if (reason.empty()) return fail(AzFailure::exited, "az exited with code " + std::to_string(run.exit_code) + " and printed no error");
    fail(AzFailure::exited, "az exited with code " + std::to_string(run.exit_code) + ": " + reason);
}

// A not-found error names the VM and group the caller asked for, which az's own text buries.
inline void name_missing_vm(const AzureVm& vm, AzCommandResult& result) {
    if (result.failure != AzFailure::not_found) return;
    if (result.stderr_text.find("ResourceGroupNotFound") != std::string::npos) {
        result.error = "resource group '" + vm.resource_group + "' was not found (ResourceGroupNotFound)";
    } else {
        result.error = "VM '" + vm.name + "' was not found in resource group '" + vm.resource_group + "' (ResourceNotFound)";
    }
}

}  // namespace detail::az

struct AzCliOptions {
    std::string path = "az";  // a name looked up on PATH, or a path
    std::chrono::milliseconds timeout{60000};  // every command but create
    std::chrono::milliseconds create_timeout{20 * 60 * 1000};  // create waits for provisioning
    // Variables set for az on top of the inherited environment (e.g. AZURE_CONFIG_DIR for another login).
    std::vector<std::pair<std::string, std::string>> environment;
};

class AzCli {
public:
    explicit AzCli(AzCliOptions options = {}) : options_(std::move(options)) {}

    const AzCliOptions& options() const noexcept { return options_; }

    // Runs `az <args...>`; never throws but std::bad_alloc. On success `stdout_text` holds what az
    // printed; otherwise `error` says why in one sentence.
    AzCommandResult run(const std::vector<std::string>& args,
                        std::optional<std::chrono::milliseconds> timeout = std::nullopt,
                        const AzCancelToken* cancel = nullptr) const {
        const auto limit = timeout.value_or(options_.timeout);
        AzCommandResult result;
        if (cancel != nullptr && cancel->cancelled()) {
            result.failure = AzFailure::cancelled;
            result.error = "az was stopped before it answered";
            return result;
        }
        std::vector<std::string> argv;
        argv.reserve(args.size() + 1);
        argv.push_back(options_.path);
        argv.insert(argv.end(), args.begin(), args.end());
        const int cancel_fd = cancel != nullptr ? cancel->wait_fd() : -1;
        auto run = detail::az::run_captured(argv, options_.environment, limit, cancel_fd);
        detail::az::classify(run, options_.path, limit, result);
        result.exit_code = run.exit_code;
        result.stdout_text = std::move(run.out);
        result.stderr_text = std::move(run.err);
        return result;
    }

    // The VM's power state from its instance view, which is the authority on it, and its public IP
    // from `show -d` (the instance view has no addresses). When only `show -d` fails, the state stands
    // without an IP.
    AzureVmStatus vm_status(const AzureVm& vm, const AzCancelToken* cancel = nullptr) const {
        if (vm.resource_group.empty() || vm.name.empty()) {
            return detail::az::failed_status("no VM given: both the resource group and the VM name are needed");
        }
        auto view = run({"vm", "get-instance-view", "-g", vm.resource_group, "-n", vm.name, "-o", "json"}, std::nullopt, cancel);
        detail::az::name_missing_vm(vm, view);
        if (!view.ok()) return detail::az::failed_status(*view.error);
        AzureVmStatus status = parse_instance_view(view.stdout_text);
        if (status.error) return status;
        const auto shown = run({"vm", "show", "-d", "-g", vm.resource_group, "-n", vm.name, "-o", "json"}, std::nullopt, cancel);
        if (!shown.ok()) return status;
        const AzureVmStatus details = parse_vm_show(shown.stdout_text);
        if (details.error) return status;
        status.ip = details.ip;
        if (status.state == "unknown") status.state = details.state;
        if (!status.size) status.size = details.size;
        if (!status.region) status.region = details.region;
        if (!status.name) status.name = details.name;
        return status;
    }

    // Deallocates without waiting for Azure to finish (the poller shows `deallocating` →
    // `deallocated`). Never `az vm stop`: a stopped VM keeps its hardware allocated and Azure keeps
    // billing compute for it; only a deallocated VM stops the compute charge.
    AzCommandResult deallocate(const AzureVm& vm, const AzCancelToken* cancel = nullptr) const {
        auto result = run({"vm", "deallocate", "-g", vm.resource_group, "-n", vm.name, "--no-wait"}, std::nullopt, cancel);
        detail::az::name_missing_vm(vm, result);
        return result;
    }

    // Creates the VM and waits for it (minutes; `create_timeout`). The size is the one asked for:
    // create's output does not repeat it.
    AzVmCreateResult create(const VmCreateSpec& spec, const AzCancelToken* cancel = nullptr) const {
        auto argv = create_command(spec);
        argv.erase(argv.begin());
        AzVmCreateResult result;
        result.command = run(argv, options_.create_timeout, cancel);
        if (!result.command.ok()) {
            result.vm = detail::az::failed_status(*result.command.error);
            return result;
        }
        result.vm = parse_vm_create(result.command.stdout_text);
        if (result.vm.error) {
            result.command.failure = AzFailure::unexpected_output;
            result.command.error = result.vm.error;
            return result;
        }
        result.vm.size = spec.size;
        if (!result.vm.name) result.vm.name = spec.vm.name;
        return result;
    }

private:
    AzCliOptions options_;
};

// Asks for the VM's state every `interval` on its own thread, from construction until destruction
// (or `stop`), and hands each answer to `on_status` on that thread. The first answer is asked for
// at once. Stopping is prompt: it wakes the wait and kills an az in flight, whose answer is then
// dropped. `on_status` must not destroy the poller; an exception it throws is dropped, because
// nothing on the poller's thread could handle it.
class VmStatePoller {
public:
    using Callback = std::function<void(const AzureVmStatus&)>;

    VmStatePoller(AzCli cli, AzureVm vm, Callback on_status,
                  std::chrono::milliseconds interval = std::chrono::seconds(30))
        : cli_(std::move(cli)), vm_(std::move(vm)), on_status_(std::move(on_status)), interval_(interval),
          thread_([this] { loop(); }) {}

    ~VmStatePoller() { stop(); }

    VmStatePoller(const VmStatePoller&) = delete;
    VmStatePoller& operator=(const VmStatePoller&) = delete;

    // Ends polling and waits for the thread (except when called from `on_status`, on that thread);
    // safe to call more than once.
    void stop() noexcept {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        cancel_.cancel();
        wake_.notify_all();
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    }

    // Asks again now rather than at the end of the interval, e.g. right after a deallocate.
    void poll_now() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            poll_requested_ = true;
        }
        wake_.notify_all();
    }

    std::optional<AzureVmStatus> latest() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return latest_;
    }

private:
    void loop() {
        while (true) {
            AzureVmStatus status = cli_.vm_status(vm_, &cancel_);
            if (cancel_.cancelled()) return;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                latest_ = status;
            }
            try {
                on_status_(status);
            } catch (...) {
            }
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait_for(lock, interval_, [this] { return stopping_ || poll_requested_; });
            if (stopping_) return;
            poll_requested_ = false;
        }
    }

    const AzCli cli_;
    const AzureVm vm_;
    const Callback on_status_;
    const std::chrono::milliseconds interval_;
    AzCancelToken cancel_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    bool poll_requested_ = false;
    std::optional<AzureVmStatus> latest_;
    std::thread thread_;  // last: it starts once everything above exists
};

// The noVNC viewer's URL once something accepts a TCP connection on `host`:`port` within `timeout`,
// else std::nullopt. `host` is where the SSH tunnel to the VM's port 8006 listens on this machine:
// a numeric address or "localhost" (names are not resolved, so the timeout holds); the URL names
// localhost, as the browser reaches the tunnel on this machine.
inline std::optional<std::string> probe_vnc(const std::string& host = "127.0.0.1", int port = 8006,
                                            std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
    if (port < 1 || port > 65535) return std::nullopt;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const std::vector<std::string> addresses =
        host == "localhost" ? std::vector<std::string>{"127.0.0.1", "::1"} : std::vector<std::string>{host};
    const std::string service = std::to_string(port);
    for (const auto& address : addresses) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
        addrinfo* found = nullptr;
        if (::getaddrinfo(address.c_str(), service.c_str(), &hints, &found) != 0) continue;
        bool connected = false;
        for (const addrinfo* a = found; a != nullptr && !connected; a = a->ai_next) {
            const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
            if (fd < 0) continue;
            if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
                connected = true;
            } else if (errno == EINPROGRESS) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                pollfd p{fd, POLLOUT, 0};
                int error = 0;
                socklen_t length = sizeof error;
                connected = left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) == 1 &&
                            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
            }
            ::close(fd);
        }
        ::freeaddrinfo(found);
        if (connected) return "http://localhost:" + service;
    }
    return std::nullopt;
}

}  // namespace azops
// #include <azops/azure.hpp> — end
// #include <azops/browser.hpp> — begin
// azops/browser.hpp — opening the dashboard in the user's browser, unless told not to.
//
// Owns: the decision whether to open a browser at all (not when told not to, not over SSH, not on
// Linux without a graphical display) and starting it: $BROWSER (a ':'-separated list of commands,
// "%s" standing for the URL, else the URL appended), or xdg-open / open. The browser runs detached
// (its own session, stdio on /dev/null, SIGPIPE and the other signals at their defaults, no file
// descriptor above 2 inherited) and is reaped by a thread of its own, so the caller never waits for
// it and no zombie is left. The URL is the only argument given: the run token is never put on a
// command line, where other local users could read it (the page carries it).
// Thread-safety: open_browser may be called from any thread; BrowserEnvironment::from_process reads
// the environment, which must not be changed concurrently.
// Errors: nothing throws; the result says what happened, with a line to show the user.

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>


namespace azops {

enum class BrowserOutcome {
    opened,          // a browser (or opener) was started
    not_requested,   // the caller said not to (--no-open)
    remote_session,  // SSH_CONNECTION is set: a browser here would open on the wrong machine
    no_display,      // Linux without DISPLAY or WAYLAND_DISPLAY
    failed,          // every candidate failed to start
};

// The environment variables the decision depends on; tests pass their own.
struct BrowserEnvironment {
    std::optional<std::string> browser;          // $BROWSER
    std::optional<std::string> display;          // $DISPLAY
    std::optional<std::string> wayland_display;  // $WAYLAND_DISPLAY
    std::optional<std::string> ssh_connection;   // $SSH_CONNECTION

    static BrowserEnvironment from_process() {
        const auto get = [](const char* name) -> std::optional<std::string> {
            const char* value = std::getenv(name);
            if (value == nullptr || *value == '\0') return std::nullopt;
            return std::string(value);
        };
        return {get("BROWSER"), get("DISPLAY"), get("WAYLAND_DISPLAY"), get("SSH_CONNECTION")};
    }
};

struct BrowserResult {
    BrowserOutcome outcome = BrowserOutcome::failed;
    std::string command;  // the program started (or the last one tried)
    pid_t pid = -1;       // the started process, when opened
    std::string message;  // one line for the user, e.g. "opened the dashboard with xdg-open"

    bool opened() const noexcept { return outcome == BrowserOutcome::opened; }
};

namespace detail {

// One $BROWSER entry as argv: split on blanks, every "%s" replaced by the URL, or the URL appended.
inline std::vector<std::string> browser_argv(std::string_view command, const std::string& url) {
    std::vector<std::string> argv;
    bool substituted = false;
    std::size_t at = 0;
    while (at < command.size()) {
        const auto start = command.find_first_not_of(" \t", at);
        if (start == std::string_view::npos) break;
        const auto end = std::min(command.find_first_of(" \t", start), command.size());
        std::string word(command.substr(start, end - start));
        for (auto pos = word.find("%s"); pos != std::string::npos; pos = word.find("%s", pos + url.size())) {
            word.replace(pos, 2, url);
            substituted = true;
        }
        argv.push_back(std::move(word));
        at = end;
    }
    if (!argv.empty() && !substituted) argv.push_back(url);
    return argv;
}

inline std::vector<std::vector<std::string>> browser_candidates(const BrowserEnvironment& env, const std::string& url) {
    std::vector<std::vector<std::string>> candidates;
    if (env.browser) {
        std::string_view list = *env.browser;
        while (!list.empty()) {
            const auto colon = std::min(list.find(':'), list.size());
            auto argv = browser_argv(list.substr(0, colon), url);
            if (!argv.empty()) candidates.push_back(std::move(argv));
            list.remove_prefix(std::min(colon + 1, list.size()));
        }
        return candidates;
    }
#if defined(__APPLE__)
    candidates.push_back({"open", url});
#else
    candidates.push_back({"xdg-open", url});
#endif
    return candidates;
}

// Starts argv detached; returns its pid, or the error of posix_spawnp.
inline int spawn_detached(const std::vector<std::string>& argv, pid_t& pid) {
    SpawnSetup setup;
    posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&setup.actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&setup.actions, 2, "/dev/null", O_WRONLY, 0);
    short flags = setup.reset_signals();
#if defined(__APPLE__)
    flags |= POSIX_SPAWN_CLOEXEC_DEFAULT;
#else
    posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);
#endif
#if defined(POSIX_SPAWN_SETSID)
    flags |= POSIX_SPAWN_SETSID;  // Ctrl-C in our terminal must not reach the browser
#else
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&setup.attr, 0);
#endif
    posix_spawnattr_setflags(&setup.attr, flags);
    std::vector<char*> args = c_argv(argv);
    return posix_spawnp(&pid, args[0], &setup.actions, &setup.attr, args.data(), environ);
}

// A browser may run for hours; a thread of its own waits for it so it never lingers as a zombie.
inline void reap_in_background(pid_t pid) noexcept {
    try {
        std::thread([pid] {
            while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
            }
        }).detach();
    } catch (const std::system_error&) {
        // No thread to spare: the child is reaped with the process, as a zombie until then.
    }
}

}  // namespace detail

// Opens `url` in a browser when `allowed` and this session can show one; never blocks.
inline BrowserResult open_browser(const std::string& url, bool allowed, const BrowserEnvironment& env) {
    BrowserResult result;
    if (!allowed) {
        result.outcome = BrowserOutcome::not_requested;
        result.message = "not opening a browser (as asked)";
        return result;
    }
    if (env.ssh_connection) {
        result.outcome = BrowserOutcome::remote_session;
        result.message = "not opening a browser: this is an SSH session (forward the port, e.g. ssh -L)";
        return result;
    }
#if !defined(__APPLE__)
    if (!env.display && !env.wayland_display) {
        result.outcome = BrowserOutcome::no_display;
        result.message = "not opening a browser: no graphical display (DISPLAY and WAYLAND_DISPLAY are unset)";
        return result;
    }
#endif
    std::string errors;
    for (const auto& argv : detail::browser_candidates(env, url)) {
        result.command = argv.front();
        pid_t pid = -1;
        const int err = detail::spawn_detached(argv, pid);
        if (err == 0) {
            detail::reap_in_background(pid);
            result.outcome = BrowserOutcome::opened;
            result.pid = pid;
            result.message = "opened the dashboard with " + argv.front();
            return result;
        }
        errors += (errors.empty() ? "" : "; ") + argv.front() + ": " + std::generic_category().message(err);
    }
    result.outcome = BrowserOutcome::failed;
    result.message = "could not start a browser (" + (errors.empty() ? std::string("$BROWSER is empty") : errors) + ")";
    return result;
}

inline BrowserResult open_browser(const std::string& url, bool allowed) {
    return open_browser(url, allowed, BrowserEnvironment::from_process());
}

}  // namespace azops
// #include <azops/browser.hpp> — end

#if defined(AZOPS_WITH_SERVER) && AZOPS_WITH_SERVER
// #include <azops/server.hpp> — begin
// azops/server.hpp — azops::StatusServer: the dashboard page, the status JSON, Server-Sent Events,
// the Stop request, Prometheus metrics and a liveness probe over HTTP (cpp-httplib).
//
// Owns: StatusFeed, where the served status comes from, with its two sources: TrackerFeed (a Tracker
// in this process) and FileFeed (a status file that another process writes); StatusServer, a
// cpp-httplib 0.11.4 server set up for a dashboard on loopback: a sized worker pool, exclusive bind,
// short timeouts, a Host allow-list against DNS rebinding, no request bodies beyond 4 KiB and none
// chunked or compressed, a token plus same-origin checks on Stop, a cap on live event streams, and a
// stop() that returns within a fraction of a second even with streams and idle sockets open.
// Thread-safety: every member of the feeds and of StatusServer may be called from any thread;
// handlers run on the server's worker threads.
// Errors: StatusServer::start() throws std::runtime_error when it cannot bind (std::logic_error when
// called twice); FileFeed's constructor throws std::system_error when it cannot start its thread.
// After that nothing throws: an unreadable status file is served as "unavailable" with the reason,
// and a failing handler answers a generic 500 without the exception's text.
//
// cpp-httplib must come with its pkg-config flags (`pkg-config --cflags --libs cpp-httplib`): the
// Debian build is a compiled library whose class layouts depend on them.

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

// #include <azops/detail/dashboard_html.hpp> — begin
// azops/detail/dashboard_html.hpp — the dashboard page, embedded.
// generated from web/azure_ops.html by tools/embed_web.py — do not edit.
//
// 48727 bytes in 4 raw-string pieces of at most 16000 bytes (MSVC's per-literal limit).
// Thread-safety: a constant. Errors: none.
// clang-format off

#include <string_view>

namespace azops::detail {

inline constexpr std::string_view dashboard_html =
R"azops_web(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="azops-token" content="__AZOPS_TOKEN__">
<title>azops</title>
<link rel="icon" id="favicon" href="data:,">
<style>
:root {
  --bg: #0d1117; --card: #161b22; --card2: #1c2330; --line: #2d3541; --text: #e6edf3; --muted: #8d96a0;
  --blue: #4493f8; --green: #3fb950; --red: #f85149; --amber: #d29922; --grey: #6e7681; --orange: #db6d28;
  --mono: ui-monospace, "DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, "Liberation Mono", monospace;
  color-scheme: dark;
}
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; }
body {
  background: var(--bg); color: var(--text); display: flex; flex-direction: column; overflow: auto;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif;
}
[hidden] { display: none !important; }
code, .mono { font-family: var(--mono); font-size: 12.5px; }
.muted { color: var(--muted); }

/* header */
.top { padding: 10px 18px 8px; border-bottom: 1px solid var(--line); background: var(--card); }
.title-row { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.brand { font-weight: 700; letter-spacing: .04em; color: var(--muted); font-size: 13px; text-transform: uppercase; }
h1 { margin: 0; font-size: 20px; font-weight: 650; overflow-wrap: anywhere; }
.spacer { flex: 1; }
.badge {
  display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 650;
  text-transform: uppercase; letter-spacing: .04em; background: var(--grey); color: #fff; white-space: nowrap;
}
.badge.ok { background: #238636; } .badge.fail { background: #da3633; } .badge.run { background: #1f6feb; }
.badge.warn { background: #9e6a03; } .badge.off { background: #3d444d; color: #c9d1d9; } .badge.hot { background: #bd561d; }
.conn { font-size: 12.5px; color: var(--muted); white-space: nowrap; }
.conn::before { content: ""; display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 6px; background: var(--grey); vertical-align: 0; }
.conn.live::before { background: var(--green); box-shadow: 0 0 0 3px rgba(63,185,80,.2); }
.conn.polling::before { background: var(--amber); }
.conn.down::before { background: var(--red); }
.meta { display: flex; flex-wrap: wrap; gap: 4px 26px; margin: 6px 0 0; }
.meta div { display: flex; gap: 7px; align-items: baseline; min-width: 0; }
.meta dt { color: var(--muted); font-size: 12px; }
.meta dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }

/* banners */
#banners { padding: 0 18px; }
.banner { margin-top: 8px; padding: 7px 14px; border-radius: 6px; border: 1px solid; border-left-width: 5px; overflow-wrap: anywhere; }
.banner b { margin-right: 6px; }
.banner.fail { background: rgba(248,81,73,.12); border-color: var(--red); }
.banner.ok { background: rgba(63,185,80,.12); border-color: var(--green); }
.banner.warn { background: rgba(210,153,34,.13); border-color: var(--amber); }
.banner.info { background: rgba(68,147,248,.11); border-color: var(--blue); }
.banner.off { background: rgba(110,118,129,.16); border-color: var(--grey); }
.banner .err { display: block; margin-top: 4px; font-family: var(--mono); font-size: 12.5px; white-space: pre-wrap; }

/* layout */
main {
  flex: 1 0 430px; min-height: 0; display: grid; gap: 12px; padding: 12px 18px;
  grid-template-columns: minmax(0, 1fr) 340px; grid-template-rows: auto minmax(0, 1fr);
  grid-template-areas: "progress side" "log side";
}
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; }
.card h2 { margin: 0 0 6px; font-size: 12px; font-weight: 650; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); display: flex; align-items: center; gap: 8px; }
.progress-card { grid-area: progress; }
.log-card { grid-area: log; display: flex; flex-direction: column; padding: 0; position: relative; min-height: 220px; }
.side { grid-area: side; display: flex; flex-direction: column; gap: 12px; min-height: 0; overflow: auto; }
footer { padding: 4px 18px 10px; color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
footer code { color: var(--text); }

/* progress */
.pct-row { display: flex; align-items: flex-end; justify-content: space-between; gap: 12px; flex-wrap: wrap; }
.pct { font-size: 34px; font-weight: 700; line-height: 1; font-variant-numeric: tabular-nums; }
.eta { text-align: right; }
.eta-main { font-size: 18px; font-weight: 650; font-variant-numeric: tabular-nums; }
.eta-sub { font-size: 12.5px; color: var(--muted); }
.bar { height: 14px; border-radius: 7px; background: #262d38; margin: 10px 0 8px; overflow: hidden; }
.fill { height: 100%; width: 0; border-radius: 7px; background: var(--blue); transition: width .4s ease; }
/* The stripes advance one step with each second the page ticks, not in a CSS animation: an animation
   redraws every frame for as long as the tab is open, which many open dashboards pay for in CPU. */
body[data-state=running] .fill {
  background-image: linear-gradient(45deg, rgba(255,255,255,.16) 25%, transparent 25%, transparent 50%, rgba(255,255,255,.16) 50%, rgba(255,255,255,.16) 75%, transparent 75%);
  background-size: 24px 24px;
}
body[data-stale] .fill { background-color: var(--amber); }
body[data-state=succeeded] .fill { background: var(--green); }
body[data-state=failed] .fill { background: var(--red); }
body[data-state=cancelled] .fill { background: var(--grey); }
@media (prefers-reduced-motion: reduce) { .fill { transition: none; } }
.step-row { display: flex; gap: 10px; align-items: baseline; min-width: 0; }
.step { font-weight: 650; white-space: nowrap; }
.results { white-space: nowrap; font-weight: 600; font-variant-numeric: tabular-nums; }
.results .ok { color: var(--green); } .results .bad { color: var(--red); }
.detail { font-family: var(--mono); font-size: 12.5px; color: #c9d1d9; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; min-width: 0; }

/* side panels */
.kv { display: grid; grid-template-columns: auto minmax(0, 1fr); gap: 3px 12px; margin: 0; }
.kv dt { color: var(--muted); font-size: 12.5px; }
.kv dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.big { font-size: 26px; font-weight: 700; font-variant-numeric: tabular-nums; line-height: 1.15; }
.big.unknown { font-size: 20px; color: var(--amber); }
.big-row { display: flex; align-items: baseline; gap: 8px; margin-bottom: 4px; }
.unit { color: var(--muted); font-size: 12.5px; }
.vm-name { margin-left: auto; text-transform: none; letter-spacing: 0; color: var(--text); font-size: 13px; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.note { margin-top: 7px; font-size: 12px; color: var(--muted); }
.note.warn { color: var(--amber); }
.note.clip { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.note.hot { color: #f0883e; }
.actions { display: flex; gap: 8px; flex-wrap: wrap; }
.btn {
  font: inherit; font-weight: 600; padding: 7px 14px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--card2); color: var(--text); cursor: pointer; text-decoration: none; display: inline-flex; align-items: center; gap: 6px;
}
.btn:hover:not(:disabled):not([aria-disabled=true]) { border-color: #8b949e; }
.btn:focus-visible { outline: 2px solid var(--blue); outline-offset: 2px; }
.btn:disabled, .btn[aria-disabled=true] { opacity: .45; cursor: not-allowed; }
#vnc[aria-disabled=false] { border-color: #388bfd; color: #79c0ff; }
.btn.danger { background: #8e1519; border-color: #b62324; color: #fff; }
.btn.danger:disabled { background: var(--card2); border-color: var(--line); color: var(--muted); }
.btn.primary { background: #1f6feb; border-color: #388bfd; color: #fff; }
.btn.small { padding: 3px 10px; font-size: 12.5px; }
.msg { font-size: 12.5px; }
.msg.fail { color: var(--red); }

/* timeline */
.tl-card { flex: 1 1 auto; min-height: 140px; display: flex; flex-direction: column; }
.tl { list-style: none; margin: 0; padding: 0; overflow-y: auto; min-height: 0; flex: 1; }
.tl li { display: grid; grid-template-columns: 12px minmax(0, 1fr) 118px; gap: 2px 8px; align-items: center; padding: 5px 0; border-top: 1px solid #21262d; }
.tl li:first-child { border-top: 0; }
.dot { width: 10px; height: 10px; border-radius: 50%; background: var(--grey); }
.tl .running .dot, li.running .dot { background: var(--blue); box-shadow: 0 0 0 3px rgba(68,147,248,.25); }
li.succeeded .dot { background: var(--green); } li.failed .dot { background: var(--red); }
.tl-name { font-weight: 600; overflow-wrap: anywhere; }
.tl-dur { font-variant-numeric: tabular-nums; font-size: 13px; text-align: right; white-space: nowrap; }
.tl-when { font-size: 11.5px; color: var(--muted); font-variant-numeric: tabular-nums; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tl-track { height: 4px; background: #21262d; border-radius: 2px; position: relative; }
.tl-track i { position: absolute; top: 0; bottom: 0; border-radius: 2px; background: var(--grey); min-width: 2px; }
li.running .tl-track i { background: var(--blue); } li.succeeded .tl-track i { background: var(--green); } li.failed .tl-track i { background: var(--red); }

/* log */
.log-head { display: flex; align-items: center; gap: 10px; padding: 8px 12px; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
.log-head h2 { margin: 0; }
.follow { font-size: 12px; color: var(--muted); }
.follow.paused { color: var(--amber); }
.log {
  flex: 1; min-height: 0; overflow-y: auto; overflow-anchor: none; background: #010409; color: #d1d7e0;
  contain: strict; /* its size comes from the card, never from its lines: a new line lays out only the log */
  font-family: var(--mono); font-size: 12.5px; line-height: 1.5; padding: 8px 12px; border-radius: 0 0 8px 8px;
  white-space: pre-wrap; overflow-wrap: anywhere; tab-size: 4;
}
.log:focus-visible { outline: 2px solid var(--blue); outline-offset: -2px; }
.log .chunk > div, .log .empty { min-height: 1.5em; }
.log .e { color: #ff7b72; } .log .w { color: #e3b341; }
.log .gap { color: var(--muted); font-style: italic; border-top: 1px dashed #30363d; border-bottom: 1px dashed #30363d; margin: 2px 0; }
.log .empty { color: var(--muted); font-style: italic; }
#jump { position: absolute; right: 22px; bottom: 14px; box-shadow: 0 4px 14px rgba(0,0,0,.5); }

/* modal */
.modal { position: fixed; inset: 0; background: rgba(1,4,9,.72); display: flex; align-items: center; justify-content: center; padding: 16px; z-index: 10; }
.dialog { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px 22px; max-width: 460px; width: 100%; box-shadow: 0 12px 40px rgba(0,0,0,.6); }
.dialog h3 { margin: 0 0 8px; font-size: 18px; }
.dialog p { margin: 0 0 10px; color: #c9d1d9; }
.dialog .row { display: flex; justify-content: flex-end; gap: 10px; margin-top: 16px; }

@media (max-width: 920px) {
  main { display: flex; flex-direction: column; flex: none; }
  .side { overflow: visible; display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); }
  .tl { max-height: 320px; }
  .side { order: 2; } .log-card { order: 3; }
  .log-card { height: 70vh; min-height: 300px; }
  .eta { text-align: left; }
}
@media (min-width: 1700px) {
  body { font-size: 15px; } .log, code, .mono, .detail { font-size: 13.5px; }
}
@media (max-width: 520px) {
  .top, #banners, main, footer { padding-left: 10px; padding-right: 10px; }
  .meta { gap: 2px 14px; }
  h1 { font-size: 17px; }
}
</style>
</head>
<body data-state="connecting">
<header class="top">
  <div class="title-row">
    <span class="brand">azops</span>
    <h1 id="task">waiting for status…</h1>
    <span id="state" class="badge off">connecting</span>
    <span class="spacer"></span>
    <span id="conn" class="conn" role="status" title="How this page receives the status">connecting…</span>
    <span id="action-msg" class="msg muted" role="status" hidden></span>
    <div class="actions">
      <a id="vnc" class="btn" target="_blank" rel="noopener noreferrer" aria-disabled="true" role="button" title="No VNC address yet">Open VNC ↗</a>
      <button id="stop" class="btn danger" type="button" disabled>Stop task…</button>
    </div>
  </div>
  <dl class="meta">
    <div><dt>operation</dt><dd id="operation">—</dd></div>
    <div><dt>phase</dt><dd id="phase">—</dd></div>
    <div><dt>started</dt><dd id="started">—</dd></div>
    <div><dt>elapsed</dt><dd id="elapsed">—</dd></div>
  </dl>
</header>

<div id="banners" aria-live="polite">
  <div id="unavailable" class="banner fail" hidden></div>
  <div id="final" class="banner" hidden></div>
  <div id="stale" class="banner warn" hidden></div>
  <div id="stalled" class="banner warn" hidden></div>
  <div id="notice" class="banner info" hidden></div>
</div>

<main>
  <section class="card progress-card" aria-label="Progress">
    <div class="pct-row">
      <span id="pct" class="pct">0%</span>
      <div class="eta">
        <div id="eta" class="eta-main">no estimate yet</div>
        <div id="eta-sub" class="eta-sub"></div>
      </div>
    </div>
    <div id="bar" class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0" aria-label="Task progress"><div id="fill" class="fill"></div></div>
    <div class="step-row"><span id="step" class="step"></span><span id="results" class="results" title="Benchmark tasks so far" hidden><span id="passed" class="ok"></span> · <span id="failed" class="bad"></span></span><span id="detail" class="detail"></span></div>
  </section>

  <section class="card log-card" aria-label="Live log">
    <div class="log-head">
      <h2>Log</h2>
      <span id="follow" class="follow">following the end</span>
      <span class="spacer"></span>
      <span id="line-count" class="follow"></span>
    </div>
    <div id="log" class="log" role="log" tabindex="0" aria-label="Log output"><div class="empty">no output yet</div></div>
    <button id="jump" class="btn primary small" type="button" hidden>Jump to latest</button>
  </section>

  <aside class="side">
    <section class="card" aria-label="Cost">
      <h2>Cost</h2>
      <div class="big-row"><span id="cost" class="big">—</span><span id="cost-unit" class="unit">so far</span></div>
      <dl class="kv">
        <dt>projected</dt><dd id="projected">—</dd>
        <dt>rate</dt><dd id="rate">—</dd>
      </dl>
      <div id="rate-source" class="note clip"></div>
      <div id="billing-note" class="note warn" hidden>VM state unknown: the cost assumes the VM is billed for the whole task.</div>
    </section>

    <section class="card" aria-label="Virtual machine">
      <h2>VM <span id="vm-state" class="badge off">none</span><span id="vm-name" class="vm-name"></span></h2>
      <dl class="kv">
        <dt>IP</dt><dd id="vm-ip" class="mono">—</dd>
        <dt>size</dt><dd id="vm-size">—</dd>
        <dt>region</dt><dd id="vm-region">—</dd>
      </dl>
      <div id="vm-note" class="note" hidden></div>
    </section>

    <section class="card tl-card" aria-label="Timeline">
      <h2>Timeline</h2>
      <ol id="timeline" class="tl"><li class="muted" style="display:block">nothing yet</li></ol>
    </section>
  </aside>
</main>

<footer>status file <code id="status-file">—</code></footer>

<div id="modal" class="modal" hidden>
  <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="modal-title" aria-describedby="modal-text">
    <h3 id="modal-title">Stop this task?</h3>
    <p id="modal-text"></p>
    <p class="muted">The running command and what it started are stopped; the task ends as cancelled.</p>
    <div class="row">
      <button id="stop-cancel" class="btn" type="button">Keep running</button>
      <button id="stop-confirm" class="btn danger" type="button">Stop task</button>
    </div>
  </div>
</div>

<script>
)azops_web"
R"azops_web('use strict';
(function () {
  const MAX_LOG_LINES = 5000;
  // Lines go into blocks of this many: a new line then lays out its block and the few dozen blocks,
  // not every line of a long log.
  const CHUNK_LINES = 100;
  const STALE_AFTER_S = 10;
  const POLL_MS = 2000;
  const SSE_RETRY_MS = 15000;

  const $ = (id) => document.getElementById(id);
  const logEl = $('log');
  const tokenMeta = document.querySelector('meta[name="azops-token"]');
  const token = tokenMeta ? tokenMeta.getAttribute('content') || '' : '';
  // An unsubstituted placeholder or an empty value both mean: this server cannot stop the task.
  const haveToken = /^[0-9a-f]{16,}$/i.test(token);

  let status = null;         // last status applied
  let receivedAt = 0;        // Date.now() when it arrived; local clock, so no skew with the writer
  let runKey = '';           // identifies one run in one file: a change resets the log
  let shownTail = [];        // log_tail as last applied, to find which lines are new
  let shownPartial = false;  // its last line is a drawing of a line that has not ended (log_partial)
  let newWhilePaused = 0;
  let lineCount = 0;         // lines received since the log was reset
  let linesShown = 0;        // line elements in the log (gap markers included)
  let stopRequested = false;
  let unavailable = null;
  let es = null, pollTimer = null, sseRetryTimer = null;
  let connState = '';
  let lastIcon = '';

  // ---- formatting (text only) ----
  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : null);
  const str = (v) => (typeof v === 'string' && v !== '' ? v : null);
  const pad = (n) => String(n).padStart(2, '0');
  function dur(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + 's';
    const m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + pad(s % 60) + 's';
    return Math.floor(m / 60) + 'h ' + pad(m % 60) + 'm';
  }
  function roughDur(s) {
    s = Math.max(0, s);
    if (s < 60) return Math.round(s) + 's';
    const m = Math.round(s / 60);
    if (m < 60) return m + ' min';
    return Math.floor(m / 60) + 'h ' + pad(m % 60) + 'm';
  }
  // Made once: toLocaleTimeString() builds a new formatter on every call, the page's costliest step.
  const HM = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const HMS = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const DAY = new Intl.DateTimeFormat([], { month: 'short', day: 'numeric' });
  function clock(ms, withSeconds) {
    const d = new Date(ms);
    let t = (withSeconds ? HMS : HM).format(d);
    if (Math.abs(ms - Date.now()) > 20 * 3600 * 1000 || d.getDate() !== new Date().getDate()) {
      t = DAY.format(d) + ' ' + t;
    }
    return t;
  }
  function money(v) {
    if (v > 0 && v < 0.01) return '<$0.01';
    return '$' + v.toFixed(2);
  }
  const parseTime = (v) => { const t = Date.parse(v); return isFinite(t) ? t : null; };
  const pretty = (name) => String(name).replace(/_/g, ' ');

  function setText(id, text) {
    const node = $(id);
    if (node.textContent !== text) node.textContent = text;
  }
  // Writes only what changes: every write, even of the same value, can cost the page a style pass,
  // and each update of every open dashboard goes through here.
  function put(node, key, value) {
    if (node[key] !== value) node[key] = value;
  }
  function putAttr(node, name, value) {
    if (node.getAttribute(name) !== value) node.setAttribute(name, value);
  }
  function make(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const bannerShown = {};
  function banner(id, show, title, body, extraClass) {
    const node = $(id);
    put(node, 'hidden', !show);
    if (!show) return;
    if (extraClass) put(node, 'className', 'banner ' + extraClass);
    const key = JSON.stringify([title, body.text || '', body.err || '']);
    if (bannerShown[id] === key) return;
    bannerShown[id] = key;
    const parts = [make('b', '', title), document.createTextNode(body.text || '')];
    if (body.err) parts.push(make('span', 'err', body.err));
    node.replaceChildren(...parts);
  }

  // ---- time-dependent values ----
  function staleSeconds() {
    if (!status || status.state !== 'running') return 0;
    const t = parseTime(status.updated_at);
    if (t === null) return 0;
    const age = (Date.now() - t) / 1000;
    return age > STALE_AFTER_S ? age : 0;
  }
  const ticking = () => status && status.state === 'running' && !staleSeconds();
  const sinceReceipt = () => (ticking() ? (Date.now() - receivedAt) / 1000 : 0);

  // ---- log ----
  const ANSI = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g;
  function cleanLine(raw) {
    let s = String(raw);
    const cr = s.lastIndexOf('\r');
    if (cr >= 0 && cr < s.length - 1) s = s.slice(cr + 1);
    return s.replace(ANSI, '');
  }
  const ERR = /\b(error|fatal|failed|failure|traceback|exception|panic)\b/i;
  const WARN = /\bwarn(ing)?\b/i;
  const lineNode = (text, cls) => make('div', cls || (ERR.test(text) ? 'e' : WARN.test(text) ? 'w' : ''), text);
  // The new tail repeats the end of the previous one: the longest suffix of `prev` that is a prefix of
  // `next` has been shown already. No overlap at all means lines were missed between two updates. (The
  // status carries no line numbers, so a burst of identical lines can look like no change.)
  function unseenLines(prev, next) {
    for (let k = Math.min(prev.length, next.length); k > 0; k--) {
      let same = true;
      for (let i = 0; i < k && same; i++) same = prev[prev.length - k + i] === next[i];
      if (same) return { lines: next.slice(k), gap: false };
    }
    return { lines: next, gap: prev.length > 0 && next.length > 0 };
  }
  // Keeps a scrollable box at its end until the user moves up in it. Only a move up counts: growing
  // content or a shrinking box also leave the view off the end for a moment, without any user action.
  function stickToEnd(node, onChange) {
    const box = { following: true, toEnd() { node.scrollTop = node.scrollHeight; } };
    let lastTop = 0;
    node.addEventListener('scroll', () => {
      const top = node.scrollTop;
      const movedUp = top < lastTop - 1;
      lastTop = top;
      const atEnd = node.scrollHeight - top - node.clientHeight < 6;
      const next = atEnd ? true : movedUp ? false : box.following;
      if (next === box.following) return;
      box.following = next;
      if (onChange) onChange();
    });
    if (window.ResizeObserver) new ResizeObserver(() => { if (box.following) box.toEnd(); }).observe(node);
    return box;
  }
  const logFollow = stickToEnd(logEl, () => {
    if (logFollow.following) newWhilePaused = 0;
    renderFollow();
  });
  const timelineFollow = stickToEnd($('timeline'));
  function resetLog() {
    logEl.replaceChildren(make('div', 'empty', 'no output yet'));
    shownTail = [];
    shownPartial = false;
    lineCount = 0;
    linesShown = 0;
    newWhilePaused = 0;
    logFollow.following = true;
  }
  function appendLog(tail, partial) {
    const next = tail.map(cleanLine);
    let prev = shownTail;
    if (shownPartial) {  // the drawing shown last gives way to its next drawing or to the ended line
      if (partial && next.length === prev.length && next.every((line, i) => line === prev[i])) return;
      prev = prev.slice(0, -1);
      removeNewestLine();
    }
    const { lines, gap } = unseenLines(prev, next);
    shownTail = next;
    shownPartial = partial && next.length > 0;
    if (!lines.length) return renderFollow();
    const first = logEl.firstElementChild;
    if (first && first.className === 'empty') first.remove();
    const nodes = lines.map((line) => lineNode(line));
    if (gap) nodes.unshift(lineNode('⋯ more lines arrived than one update carries; some are not shown here', 'gap'));
    let chunk = logEl.lastElementChild;
    for (const node of nodes) {
      if (!chunk || chunk.childElementCount >= CHUNK_LINES) chunk = logEl.appendChild(make('div', 'chunk'));
      chunk.appendChild(node);
    }
    linesShown += nodes.length;
    lineCount += lines.length;
    if (linesShown > MAX_LOG_LINES) dropOldest(linesShown - MAX_LOG_LINES);
    if (!logFollow.following) newWhilePaused += lines.length;
    renderFollow();
    if (logFollow.following) logFollow.toEnd();  // last: it lays the page out to know the end
  }
  function removeNewestLine() {
    const chunk = logEl.lastElementChild;
    if (!chunk || chunk.className !== 'chunk') return;
    chunk.lastElementChild.remove();
    if (!chunk.childElementCount) chunk.remove();
    linesShown--;
    lineCount--;
    if (newWhilePaused > 0) newWhilePaused--;
  }
  function dropOldest(count) {
    const before = logFollow.following ? 0 : logEl.scrollHeight;
    linesShown -= count;
    while (count > 0) {
      const chunk = logEl.firstElementChild;
      if (chunk.childElementCount <= count) {
        count -= chunk.childElementCount;
        chunk.remove();
      } else {
        for (; count > 0; count--) chunk.firstElementChild.remove();
      }
    }
    // A paused view keeps showing the same lines while those above it go.
    if (!logFollow.following) logEl.scrollTop -= before - logEl.scrollHeight;
  }
  function renderFollow() {
    const f = $('follow');
    put(f, 'textContent', logFollow.following ? 'following the end' : 'paused — scrolled up');
    put(f, 'className', logFollow.following ? 'follow' : 'follow paused');
    const jump = $('jump');
    put(jump, 'hidden', logFollow.following);
    put(jump, 'textContent', newWhilePaused > 0 ? 'Jump to latest (' + newWhilePaused + ' new)' : 'Jump to latest');
    const shown = Math.min(lineCount, MAX_LOG_LINES);
    setText('line-count', lineCount ? shown + (shown === 1 ? ' line' : ' lines') : '');
  }
  $('jump').addEventListener('click', () => {
    logFollow.following = true;
    newWhilePaused = 0;
    logFollow.toEnd();
    renderFollow();
  });

  // ---- rendering ----
  const STATE_BADGE = { running: 'run', succeeded: 'ok', failed: 'fail', cancelled: 'off' };
  function renderHeader(s) {
    setText('task', str(s.task) || 'task');
    const badge = $('state');
    put(badge, 'textContent', s.state || 'unknown');
    put(badge, 'className', 'badge ' + (STATE_BADGE[s.state] || 'off'));
    setText('operation', str(s.operation) || '—');
    setText('phase', str(s.phase) ? pretty(s.phase) : '—');
    const started = parseTime(s.started_at);
    setText('started', started === null ? '—' : clock(started, false));
    put($('started'), 'title', s.started_at || '');
    const elapsed = num(s.elapsed_seconds);
    setText('elapsed', elapsed === null ? '—' : dur(elapsed + sinceReceipt()));
    setText('status-file', str(s.status_file) || '(not given)');
  }
  function renderProgress(s) {
    const pct = Math.max(0, Math.min(100, num(s.progress_pct) || 0));
    const shown = pct >= 100 || pct <= 0 ? Math.round(pct) : pct < 10 ? Math.floor(pct * 10) / 10 : Math.floor(pct);
    setText('pct', shown + '%');
    const fill = $('fill').style;
    if (fill.width !== pct + '%') fill.width = pct + '%';
    putAttr($('bar'), 'aria-valuenow', String(Math.round(pct)));
    const step = num(s.step), total = num(s.total_steps);
    setText('step', total ? (s.operation === 'benchmark' ? 'task ' : 'step ') + step + ' of ' + total : '');
    const passed = num(s.tasks_succeeded), failed = num(s.tasks_failed);
    $('results').hidden = passed === null || failed === null;
    setText('passed', passed === null ? '' : passed + ' passed');
    setText('failed', failed === null ? '' : failed + ' failed');
    setText('detail', str(s.detail) || '');
    put($('detail'), 'title', str(s.detail) || '');

    let main = '', sub = '';
    const eta = num(s.eta_seconds);
    if (s.state === 'running') {
      if (eta === null) {
        main = 'no estimate yet';
        sub = s.eta_source && s.eta_source !== 'none' ? '' : 'no past runs or progress to estimate from';
      } else {
        const left = Math.max(0, eta - sinceReceipt());
        main = left >= 1 ? '≈ ' + roughDur(left) + ' left' : 'any moment (past the estimate)';
        const lo = num(s.eta_low_seconds), hi = num(s.eta_high_seconds);
        const bits = [];
        if (lo !== null && hi !== null) bits.push('range ' + roughDur(lo) + '–' + roughDur(hi));
        bits.push('done ≈ ' + clock(receivedAt + eta * 1000, false));
        bits.push(ETA_SOURCE[s.eta_source] || 'source: ' + (s.eta_source || 'unknown'));
        sub = bits.join(' · ');
        const updated = parseTime(s.updated_at);
        if (staleSeconds() && updated !== null) {
          sub = 'last estimate, at ' + clock(updated, false) + ': ' + main;
          main = 'unknown: no heartbeat';
        }
      }
    } else if (s.state) {
      main = s.state === 'succeeded' ? 'done' : s.state;
      const el = num(s.elapsed_seconds);
      sub = el === null ? '' : 'after ' + dur(el);
    }
    setText('eta', main);
    setText('eta-sub', sub);
  }
  const ETA_SOURCE = {
    history: 'from past runs', progress: 'from progress so far', blend: 'from past runs and progress',
    none: 'no estimate',
  };
  function renderCost(s) {
    const known = s.rate_known !== false && num(s.hourly_rate_usd) !== null;
    const cost = $('cost');
    const so = num(s.cost_usd), rate = num(s.hourly_rate_usd), proj = num(s.projected_cost_usd);
    // A command run without any VM (azops run on this machine): nothing to price, nothing to warn about.
    const noVm = !known && !str(s.vm_size) && !str(s.vm_name);
    if (noVm) {
      put(cost, 'textContent', 'no VM');
      put(cost, 'className', 'big unknown');
      put($('cost-unit'), 'hidden', true);
      setText('rate', '—');
      setText('projected', '—');
    } else if (known) {
      put(cost, 'textContent', so === null ? '—' : money(so));
      put(cost, 'className', 'big');
      put($('cost-unit'), 'hidden', false);
      setText('rate', '$' + rate.toFixed(3) + '/h');
      const about = proj === null ? '' : money(proj);
      setText('projected', proj === null ? '—' : (about[0] === '<' ? about : '~' + about) + ' total');
    } else {
      put(cost, 'textContent', 'rate unknown');
      put(cost, 'className', 'big unknown');
      put($('cost-unit'), 'hidden', true);
      setText('rate', 'unknown');
      setText('projected', '—');
    }
    const src = str(s.rate_source);
    setText('rate-source', noVm ? 'no VM size given: nothing is priced' : src ? 'rate: ' + src :
      known ? '' : 'no price known for this VM size and region');
    put($('rate-source'), 'title', $('rate-source').textContent);
    put($('billing-note'), 'hidden', !s.billing_assumed || noVm);
    const stateKnown = VM_BADGE[str(s.vm_state)] !== undefined;
    setText('billing-note', stateKnown
      ? 'Time when the VM state was not known yet is counted as billed.'
      : 'VM state unknown: the cost assumes the VM is billed for the whole task.');
  }
  const VM_BADGE = { running: 'ok', starting: 'warn', stopping: 'warn', deallocating: 'warn', stopped: 'hot', deallocated: 'off', absent: 'off' };
  const BILLED = ['running', 'starting', 'stopping'];
  function renderVm(s) {
    const badge = $('vm-state');
    const vmState = str(s.vm_state);
    const anyVm = vmState || str(s.vm_name) || str(s.vm_ip) || str(s.vm_size);
    put(badge, 'textContent', vmState || (anyVm ? 'unknown' : 'none'));
    put(badge, 'className', 'badge ' + (VM_BADGE[vmState] || 'off'));
    setText('vm-name', str(s.vm_name) || '');
    setText('vm-ip', str(s.vm_ip) || '—');
    setText('vm-size', str(s.vm_size) || '—');
    setText('vm-region', str(s.region) || '—');
    const note = $('vm-note');
    let text = '', cls = 'note';
    const ended = s.state && s.state !== 'running';
)azops_web"
R"azops_web(    if (vmState === 'stopped') { text = 'Stopped but still allocated: Azure still bills compute until it is deallocated.'; cls = 'note hot'; }
    else if (vmState === 'deallocated') text = 'Deallocated: compute is not billed.';
    else if (vmState === 'absent') text = 'No such VM on Azure (not created yet, or gone): nothing is billed.';
    else if (ended && BILLED.includes(vmState)) {
      const rate = num(s.hourly_rate_usd);
      text = 'The task has ended but the VM is still allocated' + (rate !== null && s.rate_known !== false ? ' and billed at $' + rate.toFixed(3) + '/h' : ' and billed') + '.';
      cls = 'note hot';
    }
    const idle = parseTime(s.idle_deallocate_at), written = parseTime(s.updated_at);
    if (idle !== null) {
      // Counted on the writer's clock (which a simulation may run faster), not this browser's.
      const left = written === null ? null : (idle - written) / 1000 - (Date.now() - receivedAt) / 1000;
      text = (text ? text + ' ' : '') + 'Deallocates when idle at ' + clock(idle, false) +
        (left !== null && left > 0 ? ' (in ' + roughDur(left) + ')' : '') + '.';
    }
    put(note, 'hidden', !text);
    put(note, 'textContent', text);
    put(note, 'className', cls);
  }
  function renderVnc(s) {
    const a = $('vnc');
    let url = null;
    try {
      const u = str(s.vnc_url) ? new URL(s.vnc_url, location.href) : null;
      if (u && (u.protocol === 'http:' || u.protocol === 'https:')) url = u.href;
    } catch (e) { url = null; }
    if (url) {
      putAttr(a, 'href', url);
      putAttr(a, 'aria-disabled', 'false');
      put(a, 'title', url);
    } else {
      if (a.hasAttribute('href')) a.removeAttribute('href');
      putAttr(a, 'aria-disabled', 'true');
      put(a, 'title', 'No VNC address yet');
    }
  }
  function renderStop(s) {
    const btn = $('stop');
    const can = haveToken && s.state === 'running' && s.cancellable === true && !stopRequested;
    put(btn, 'disabled', !can);
    put(btn, 'textContent', stopRequested && s.state === 'running' ? 'Stopping…' : 'Stop task…');
    put(btn, 'title', !haveToken ? 'This server cannot stop the task (no run token)' :
      s.state !== 'running' ? 'The task has ended' :
      s.cancellable !== true ? 'The task cannot be stopped right now' : 'Stop the task (asks for confirmation)');
  }
  // The timeline is rebuilt only when what it shows has changed: at most once a second while a
  // step runs, not on every update.
  let timelineShown = '';
  function renderTimeline(s) {
    const list = $('timeline');
    const entries = Array.isArray(s.timeline) ? s.timeline.filter((e) => e && typeof e === 'object') : [];
    const now = ticking() ? Date.now() : receivedAt;
    const spans = entries.map((e) => {
      const start = parseTime(e.started_at);
      let d = num(e.duration_seconds) || 0;
      if (e.state === 'running') d += sinceReceipt();
      const end = parseTime(e.ended_at);
      return { e, start, d, end: end !== null ? end : start !== null ? (e.state === 'running' ? Math.max(now, start) : start + d * 1000) : null };
    });
    const starts = spans.map((x) => x.start).filter((v) => v !== null);
    const ends = spans.map((x) => x.end).filter((v) => v !== null);
    const t0 = starts.length ? Math.min(...starts) : null;
    const t1 = ends.length ? Math.max(...ends) : null;
    const width = t0 !== null && t1 !== null && t1 > t0 ? t1 - t0 : null;
    const rows = spans.map(({ e, start, d, end }) => {
      const st = ['running', 'succeeded', 'failed', 'cancelled'].includes(e.state) ? e.state : 'other';
      const failedOrCancelled = st === 'failed' || st === 'cancelled';
      const row = { st, title: (e.name || '') + ' — ' + (e.state || ''), name: pretty(e.name || '?'),
        dur: (failedOrCancelled ? st + ' · ' : '') + dur(d), when: null, left: null, width: null };
      if (start === null) return row;
      row.when = clock(start, true) + ' → ' + (st === 'running' ? 'now' : end !== null ? clock(end, true) : '…');
      if (width !== null) {
        row.left = ((start - t0) / width * 100).toFixed(1) + '%';
        row.width = (Math.max(0, (end === null ? start : end) - start) / width * 100).toFixed(1) + '%';
      }
      return row;
    });
    const key = JSON.stringify(rows);
    if (key === timelineShown) return;
    timelineShown = key;
    if (!rows.length) {
      const li = make('li', 'muted', 'nothing yet');
      li.style.display = 'block';
      list.replaceChildren(li);
      return;
    }
    list.replaceChildren(...rows.map(timelineItem));
    if (timelineFollow.following) timelineFollow.toEnd();  // the current operation stays in view
  }
  function timelineItem(row) {
    const li = make('li', row.st);
    li.title = row.title;
    li.append(make('span', 'dot'), make('span', 'tl-name', row.name), make('span', 'tl-dur', row.dur));
    if (row.when === null) return li;
    li.append(make('span', 'dot-gap'), make('span', 'tl-when', row.when));
    if (row.left !== null) {
      const track = make('div', 'tl-track');
      const bar = make('i');
      bar.style.left = row.left;
      bar.style.width = row.width;
      track.appendChild(bar);
      li.appendChild(track);
    }
    return li;
  }
  function renderBanners(s) {
    const err = str(s.error);
    if (s.state === 'succeeded') {
      const el = num(s.elapsed_seconds);
      banner('final', true, 'Succeeded.', { text: (str(s.task) || 'The task') + ' finished' + (el !== null ? ' in ' + dur(el) : '') + '.' }, 'ok');
    } else if (s.state === 'failed') {
      banner('final', true, 'Failed.', { text: 'during ' + (str(s.operation) || 'the task') + (str(s.phase) ? ' / ' + pretty(s.phase) : ''), err: err || 'no error message was recorded' }, 'fail');
    } else if (s.state === 'cancelled') {
      banner('final', true, 'Cancelled.', { text: 'The task was stopped before it finished.', err: err || undefined }, 'off');
    } else {
      banner('final', false);
    }
    const stale = staleSeconds();
    const updated = parseTime(s.updated_at);
    document.body.toggleAttribute('data-stale', !!stale);
    banner('stale', !!stale, 'No heartbeat for ' + dur(stale) + '.',
      { text: 'The writer is gone or not updating since ' + (updated !== null ? clock(updated, true) : '?') +
        ': the numbers below are from then and may be wrong. Check the process that runs the task.' });
    const stalled = num(s.stalled_seconds);
    const burned = num(s.stalled_cost_usd);
    banner('stalled', stalled !== null && s.state === 'running', 'Stuck for ' + roughDur(stalled || 0) + '.',
      { text: 'No progress and no output for ' + roughDur(stalled || 0) + ', much longer than this step usually takes.' +
        (burned !== null && s.rate_known !== false ? ' It has cost ' + money(burned) + ' since then.' : '') });
    const notice = str(s.notice);
    banner('notice', !!notice, 'Note:', { text: notice || '' });
    banner('unavailable', !!unavailable, 'Status unavailable.', unavailable ? {
      text: 'The server cannot read the status file' + (unavailable.file ? ' ' + unavailable.file : '') + '.',
      err: unavailable.error } : {});
  }
  function renderTitle(s) {
    const pct = Math.floor(Math.max(0, Math.min(100, num(s.progress_pct) || 0)));
    const what = str(s.operation) || str(s.task) || 'task';
    let title = pct + '% ' + what;
    if (s.state && s.state !== 'running') title = s.state + ': ' + title;
    else if (staleSeconds()) title = 'stale: ' + title;
    title += ' — azops';
    if (document.title !== title) document.title = title;
    renderIcon(pct, staleSeconds() ? 'stale' : s.state);
  }
  // A progress ring in the tab, drawn locally (a data: URL; nothing is fetched).
  function renderIcon(pct, state) {
    const key = pct + state;
    if (key === lastIcon) return;
    lastIcon = key;
    const c = document.createElement('canvas');
    c.width = c.height = 32;
    const g = c.getContext('2d');
    if (!g) return;
    const colour = { succeeded: '#3fb950', failed: '#f85149', cancelled: '#8d96a0', stale: '#d29922' }[state] || '#4493f8';
    g.lineWidth = 6;
    g.strokeStyle = '#30363d';
    g.beginPath(); g.arc(16, 16, 12, 0, 2 * Math.PI); g.stroke();
    g.strokeStyle = colour;
    g.beginPath(); g.arc(16, 16, 12, -Math.PI / 2, -Math.PI / 2 + 2 * Math.PI * (state === 'running' || state === 'stale' ? pct / 100 : 1)); g.stroke();
    $('favicon').setAttribute('href', c.toDataURL('image/png'));
  }

  function renderAll() {
    if (!status) {
      banner('unavailable', !!unavailable, 'Status unavailable.', unavailable ? {
        text: 'The server cannot read the status file' + (unavailable.file ? ' ' + unavailable.file : '') + '.',
        err: unavailable.error } : {});
      if (unavailable) {
        setText('task', 'no status to show');
        setText('state', 'unavailable');
        $('state').className = 'badge warn';
        if (unavailable.file) setText('status-file', unavailable.file);
      }
      return;
    }
    const s = status;
    putAttr(document.body, 'data-state', s.state || 'unknown');
    renderHeader(s);
    renderProgress(s);
    renderCost(s);
    renderVm(s);
    renderVnc(s);
    renderStop(s);
    renderTimeline(s);
    renderBanners(s);
    renderTitle(s);
  }

  function applyStatus(s) {
    if (!s || typeof s !== 'object' || Array.isArray(s)) return;
    const key = (s.status_file || '') + '|' + (s.started_at || '') + '|' + (s.task || '');
    const newer = parseTime(s.updated_at), older = status ? parseTime(status.updated_at) : null;
    if (key === runKey && newer !== null && older !== null && newer < older) return;  // a late poll answer
    if (key !== runKey) {
      runKey = key;
      resetLog();
      stopRequested = false;
    }
    if (status && status.state !== s.state) stopRequested = false;
    status = s;
    receivedAt = Date.now();
    unavailable = null;
    renderAll();
    // Last, as following the log reads its height: after every other change, one layout serves all.
    appendLog(Array.isArray(s.log_tail) ? s.log_tail.filter((l) => typeof l === 'string') : [], s.log_partial === true);
  }
  function applyUnavailable(text) {
    let why = null;
    try { why = JSON.parse(text); } catch (e) { why = null; }
    unavailable = {
      error: why && typeof why.error === 'string' ? why.error : 'no readable status',
      file: why && typeof why.status_file === 'string' ? why.status_file : '',
    };
    renderAll();
  }
  function applyText(text) {
    let s;
    try { s = JSON.parse(text); } catch (e) { return; }
    applyStatus(s);
  }

  // ---- transport: SSE first, polling when SSE fails ----
  // Events that come faster than this page can draw them (a busy machine, a flooding log) queue up;
  // drawing each would leave the page further behind with every one. Only the newest event waiting
  // is drawn, once the page is free (skipped log lines show as a gap, as between two polls).
  let undrawn = null;
  function drawSoon(draw) {
    const idle = undrawn === null;
    undrawn = draw;
    if (idle) setTimeout(() => { const newest = undrawn; undrawn = null; newest(); }, 0);
  }
  function setConn(state) {
    if (state === connState) return;
    connState = state;
    const node = $('conn');
    const label = { live: 'live (SSE)', polling: 'polling every 2 s', down: 'disconnected — retrying', paused: 'paused (tab hidden)', connecting: 'connecting…' };
    node.textContent = label[state] || state;
    node.className = 'conn ' + state;
  }
  function openSse() {
    if (es || document.hidden) return;
    if (!window.EventSource) { startPolling(); return; }
    const source = new EventSource('api/azure-ops-events');
    es = source;
    source.addEventListener('open', () => { stopPolling(); setConn('live'); });
    source.addEventListener('status', (ev) => { stopPolling(); setConn('live'); drawSoon(() => applyText(ev.data)); });
    source.addEventListener('unavailable', (ev) => { stopPolling(); setConn('live'); drawSoon(() => applyUnavailable(ev.data)); });
    source.addEventListener('error', () => {
      if (es !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // Refused for good (e.g. 503 at the server's stream cap): poll, and try the stream again later.
        es = null;
        clearTimeout(sseRetryTimer);
        sseRetryTimer = setTimeout(openSse, SSE_RETRY_MS);
      }
      startPolling();
    });
  }
  function closeSse() {
    clearTimeout(sseRetryTimer);
    sseRetryTimer = null;
    if (es) { es.close(); es = null; }
  }
  function startPolling() {
    if (pollTimer || document.hidden) return;
    pollTimer = setInterval(pollOnce, POLL_MS);
    pollOnce();
  }
  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }
  async function pollOnce() {
    try {
      const r = await fetch('api/azure-ops-status', { cache: 'no-store', headers: { Accept: 'application/json' } });
      const text = await r.text();
      if (!pollTimer) return;
      if (r.status === 503) applyUnavailable(text);
      else if (r.ok) applyText(text);
      else throw new Error('HTTP ' + r.status);
      setConn('polling');
    } catch (e) {
      if (pollTimer) setConn('down');
    }
  }
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      closeSse();
      stopPolling();
      setConn('paused');
    } else {
      setConn('connecting');
      openSse();
    }
  });

  // ---- Stop, with our own confirmation dialog ----
  const modal = $('modal');
  let lastFocus = null;
  function openModal() {
    if (!status) return;
    const cost = status.rate_known !== false && num(status.cost_usd) !== null ? ' It has cost ' + money(status.cost_usd) + ' so far.' : '';
    setText('modal-text', 'Stop "' + (str(status.task) || 'task') + '" during ' + (str(status.operation) || '?') +
      ' at ' + Math.floor(num(status.progress_pct) || 0) + '%?' + cost);
    lastFocus = document.activeElement;
    modal.hidden = false;
    $('stop-cancel').focus();
  }
  function closeModal() {
    modal.hidden = true;
    if (lastFocus && lastFocus.focus) lastFocus.focus();
  }
  function actionMessage(text, fail) {
    const m = $('action-msg');
    m.hidden = !text;
    m.textContent = text;
    m.className = 'msg ' + (fail ? 'fail' : 'muted');
  }
  async function requestStop() {
    closeModal();
    stopRequested = true;
    renderAll();
    actionMessage('Stop requested — waiting for the task to end…');
    try {
      const r = await fetch('api/azure-ops/cancel', { method: 'POST', cache: 'no-store', headers: { 'X-Azops-Token': token } });
      let message = '';
      try { const body = await r.json(); message = typeof body.message === 'string' ? body.message : ''; } catch (e) { message = ''; }
      if (r.status !== 202) {
        stopRequested = false;
        actionMessage('Stop refused (HTTP ' + r.status + ')' + (message ? ': ' + message : ''), true);
      } else {
        actionMessage('Stop requested' + (message ? ' (' + message + ')' : '') + ' — waiting for the task to end…');
      }
    } catch (e) {
      stopRequested = false;
      actionMessage('Stop failed: the server did not answer.', true);
    }
    renderAll();
  }
  $('stop').addEventListener('click', openModal);
  $('stop-cancel').addEventListener('click', closeModal);
  $('stop-confirm').addEventListener('click', requestStop);
  modal.addEventListener('click', (ev) => { if (ev.target === modal) closeModal(); });
  document.addEventListener('keydown', (ev) => {
    if (modal.hidden) return;
    if (ev.key === 'Escape') { ev.preventDefault(); closeModal(); }
    else if (ev.key === 'Tab') {
      const first = $('stop-cancel'), last = $('stop-confirm');
      if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
      else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
    }
  });
)azops_web"
R"azops_web(  $('vnc').addEventListener('click', (ev) => { if ($('vnc').getAttribute('aria-disabled') === 'true') ev.preventDefault(); });

  const reducedMotion = window.matchMedia ? window.matchMedia('(prefers-reduced-motion: reduce)') : null;
  let stripeStep = 0;
  setInterval(() => {
    if (!status) return;
    renderAll();
    if (ticking() && !(reducedMotion && reducedMotion.matches)) {
      stripeStep = (stripeStep + 1) % 4;
      $('fill').style.backgroundPosition = stripeStep * 6 + 'px 0';
    }
  }, 1000);
  // For tests and for people debugging in the console: feed a status object as if it had arrived.
  window.azopsPage = Object.freeze({ applyStatus: (s) => applyStatus(JSON.parse(JSON.stringify(s))) });
  setConn('connecting');
  openSse();
})();
</script>
</body>
</html>
)azops_web";

}  // namespace azops::detail
// clang-format on
// #include <azops/detail/dashboard_html.hpp> — end

namespace azops {

// One look at the status: the document, or why there is none.
struct FeedSnapshot {
    std::uint64_t version = 0;               // changes whenever `json` or `unavailable` changes
    std::string json;                        // the status document, one line of JSON
    std::optional<std::string> unavailable;  // why there is no valid status (file missing, garbage)
};

struct CancelOutcome {
    bool accepted = false;
    std::string message;
};

// Where a StatusServer takes the status from. Implementations must be thread-safe: every HTTP worker
// calls them concurrently.
class StatusFeed {
public:
    virtual ~StatusFeed() = default;
    virtual FeedSnapshot snapshot() = 0;  // cheap
    // Waits until the version differs from `seen`, at most `timeout`; true when it does.
    virtual bool wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout) = 0;
    virtual CancelOutcome request_cancel() = 0;
    virtual std::string token() = 0;  // the run token; "" when no stop can be asked for
    // The status file this status is (or would be) written to, for the "unavailable" answer.
    virtual std::string status_file() { return {}; }
};

namespace detail {

inline std::string absolute_path_text(const std::filesystem::path& p) {
    std::error_code ec;
    const auto abs = std::filesystem::absolute(p, ec);
    return (ec ? p : abs.lexically_normal()).string();
}

// A token goes into the page's HTML; only plain hex of a sane length may.
inline bool is_hex_token(std::string_view token) noexcept {
    if (token.size() < 16 || token.size() > 128) return false;
    return std::all_of(token.begin(), token.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    });
}

}  // namespace detail

// Serves the Tracker of this process. The tracker must outlive the feed.
class TrackerFeed : public StatusFeed {
public:
    explicit TrackerFeed(Tracker& tracker) : tracker_(tracker) {}

    FeedSnapshot snapshot() override {
        Published p = tracker_.published();
        if (p.json.empty()) return {p.version, {}, std::string("the task has not published a status yet")};
        return {p.version, std::move(p.json), std::nullopt};
    }

    bool wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout) override {
        return tracker_.wait_for_publish(seen, timeout);
    }

    CancelOutcome request_cancel() override {
        if (tracker_.request_cancel()) return {true, "stop requested"};
        return {false, "the task cannot be stopped now"};
    }

    std::string token() override { return tracker_.token(); }

    std::string status_file() override { return detail::absolute_path_text(tracker_.status_file()); }

private:
    Tracker& tracker_;
};

struct FileFeedOptions {
    std::chrono::milliseconds poll_interval{100};  // how often the files are stat'ed
    std::size_t max_file_bytes = 16U << 20;        // a larger status file is refused as unavailable
};

// Serves a status file written by another process (a Tracker elsewhere). Its own thread stats the
// file every poll interval and re-reads it only when its inode, size or modification time changed,
// so writers should replace it atomically (as StatusWriter does). It reads the run token from
// `<status file>.token` and asks for a stop by creating `<status file>.cancel` holding that token:
// it cannot signal the writer's child itself.
class FileFeed : public StatusFeed {
public:
    explicit FileFeed(std::filesystem::path status_file, FileFeedOptions options = {})
        : path_(std::move(status_file)),
          options_(options),
          version_(first_version()) {
        refresh();
        poller_ = std::thread([this] { poll(); });
    }

    ~FileFeed() override {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        poller_.join();
    }

    FileFeed(const FileFeed&) = delete;
    FileFeed& operator=(const FileFeed&) = delete;

    FeedSnapshot snapshot() override {
        std::lock_guard<std::mutex> lock(mutex_);
        return {version_, json_, unavailable_};
    }

    bool wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout) override {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return version_ != seen; });
    }

    CancelOutcome request_cancel() override {
        std::string token;
        bool cancellable = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            token = token_;
            cancellable = cancellable_ && !unavailable_;
        }
        if (token.empty()) return {false, "no run token beside the status file; the task cannot be asked to stop"};
        if (!cancellable) return {false, "the task cannot be stopped now"};
        if (auto error = write_cancel_request(token)) return {false, *error};
        return {true, "stop requested"};
    }

    std::string token() override {
        std::lock_guard<std::mutex> lock(mutex_);
        return token_;
    }

    std::string status_file() override { return detail::absolute_path_text(path_); }

    // Looks at the files now instead of at the next poll.
    void refresh() {
        std::lock_guard<std::mutex> serial(refresh_mutex_);
        refresh_status();
        refresh_token();
    }

    const std::filesystem::path& path() const noexcept { return path_; }
    std::filesystem::path token_file() const { return sidecar(".token"); }
    std::filesystem::path cancel_request_file() const { return sidecar(".cancel"); }

private:
    struct FileStamp {
        int error = 0;  // errno of stat, 0 when the file exists
        dev_t device = 0;
        ino_t inode = 0;
        off_t size = 0;
        std::int64_t mtime_ns = 0;

        bool operator==(const FileStamp& o) const noexcept {
            return error == o.error && device == o.device && inode == o.inode && size == o.size &&
                   mtime_ns == o.mtime_ns;
        }
        bool operator!=(const FileStamp& o) const noexcept { return !(*this == o); }
    };

    // Event ids carry the version; starting from the wall clock keeps them increasing across
    // restarts of the server, so a browser's Last-Event-ID from a previous run never matches.
    static std::uint64_t first_version() {
        using namespace std::chrono;
        return static_cast<std::uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
    }

    static FileStamp stamp_of(const std::filesystem::path& p) noexcept {
        FileStamp s;
        struct stat st {};
        if (::stat(p.c_str(), &st) != 0) {
            s.error = errno;
            return s;
        }
        s.device = st.st_dev;
        s.inode = st.st_ino;
        s.size = st.st_size;
        s.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        return s;
    }

    std::filesystem::path sidecar(const char* suffix) const {
        std::filesystem::path p = path_;
        p += suffix;
        return p;
    }

    void poll() {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!stopping_) {
            wake_.wait_for(lock, options_.poll_interval, [this] { return stopping_; });
            if (stopping_) break;
            lock.unlock();
            refresh();
            lock.lock();
        }
    }

    // Reads at most max_file_bytes + 1 bytes, so an oversized file is recognised without reading it all.
    static std::optional<std::string> read_bounded(const std::filesystem::path& p, std::size_t limit, int& error) {
        const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            error = errno;
            return std::nullopt;
        }
        std::string text;
        std::array<char, 16384> buffer;
        while (text.size() <= limit) {
            const ssize_t n = ::read(fd, buffer.data(), buffer.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                error = errno;
                ::close(fd);
                return std::nullopt;
            }
            if (n == 0) break;
            text.append(buffer.data(), static_cast<std::size_t>(n));
        }
        ::close(fd);
        return text;
    }

    struct Reading {
        std::string json;
        std::optional<std::string> unavailable;
        bool cancellable = false;
    };

    Reading read_status() const {
        int error = 0;
        const auto text = read_bounded(path_, options_.max_file_bytes, error);
        if (!text) {
            if (error == ENOENT) return {{}, std::string("the status file does not exist yet"), false};
            return {{}, std::string("cannot read the status file: ") + std::generic_category().message(error), false};
        }
        if (text->size() > options_.max_file_bytes) {
            return {{}, "the status file is larger than " + std::to_string(options_.max_file_bytes) + " bytes", false};
        }
        if (text->find_first_not_of(" \t\r\n") == std::string::npos) {
            return {{}, std::string("the status file is empty"), false};
        }
        nlohmann::json doc;
        try {
            doc = nlohmann::json::parse(*text);
        } catch (const nlohmann::json::parse_error& e) {
            return {{}, "the status file is not valid JSON: " + parse_error_text(e.what()), false};
        }
        if (!doc.is_object()) return {{}, std::string("the status file does not hold a JSON object"), false};
        const auto cancellable = doc.find("cancellable");
        const bool can_cancel = cancellable != doc.end() && cancellable->is_boolean() && cancellable->get<bool>();
        return {to_json_text(doc), std::nullopt, can_cancel};
    }

    // "[json.exception.parse_error.101] parse error at line 1, column 9: ...; last read: '...'" →
    // "parse error at line 1, column 9: ...". What was last read is the file's own text, as long as
    // the file (a 10 MB unterminated string), and would go to every viewer in every answer.
    static std::string parse_error_text(std::string_view what) {
        const auto bracket = what.find("] ");
        if (bracket != std::string_view::npos) what.remove_prefix(bracket + 2);
        return std::string(what.substr(0, what.find("; last read: ")));
    }

    void refresh_status() {
        const FileStamp stamp = stamp_of(path_);
        if (status_seen_ && stamp == status_stamp_) return;
        status_seen_ = true;
        status_stamp_ = stamp;
        Reading reading = read_status();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            cancellable_ = reading.cancellable;
            if (reading.json == json_ && reading.unavailable == unavailable_) return;
            json_ = std::move(reading.json);
            unavailable_ = std::move(reading.unavailable);
            ++version_;
        }
        changed_.notify_all();
    }

    void refresh_token() {
        const FileStamp stamp = stamp_of(token_file());
        if (token_seen_ && stamp == token_stamp_) return;
        token_seen_ = true;
        token_stamp_ = stamp;
        int error = 0;
        std::string token;
        if (const auto text = read_bounded(token_file(), 1024, error)) {
            token = text->substr(0, text->find_first_of("\r\n"));
            if (!detail::is_hex_token(token)) token.clear();
        }
        std::lock_guard<std::mutex> lock(mutex_);
        token_ = std::move(token);
    }

    // The writer takes the request from `<status file>.cancel`; it must appear whole (temp file +
    // rename) and only its owner may read it, since it holds the token.
    std::optional<std::string> write_cancel_request(const std::string& token) const {
        const std::filesystem::path target = cancel_request_file();
        std::string temp = (target.parent_path() / (detail::temp_prefix(target) + "XXXXXX")).string();
        const int fd = ::mkostemp(temp.data(), O_CLOEXEC);  // mode 0600
        if (fd < 0) return detail::errno_text("cannot create a stop request in", target.parent_path(), errno);
        const bool written = detail::write_all(fd, token + "\n");
        const int write_error = errno;
        if (::close(fd) != 0 || !written) {
            ::unlink(temp.c_str());
            return detail::errno_text("cannot write", temp, written ? errno : write_error);
        }
        if (::rename(temp.c_str(), target.c_str()) != 0) {
            const int err = errno;
            ::unlink(temp.c_str());
            return detail::errno_text("cannot create", target, err);
        }
        return std::nullopt;
    }

    const std::filesystem::path path_;
    const FileFeedOptions options_;

    std::mutex refresh_mutex_;  // one refresh at a time; guards the stamps below
    bool status_seen_ = false;
    FileStamp status_stamp_;
    bool token_seen_ = false;
    FileStamp token_stamp_;

    std::mutex mutex_;  // guards everything below
    std::condition_variable changed_;
    std::condition_variable wake_;
    std::uint64_t version_;
    std::string json_;
    std::optional<std::string> unavailable_;
    bool cancellable_ = false;
    std::string token_;
    bool stopping_ = false;

    std::thread poller_;  // last: it uses the members above
};

// What a request did, for an access log. `peer` is the TCP peer, never a header.
struct AccessLogEntry {
    std::string peer;
    int peer_port = -1;
    std::string method;
    std::string path;
    int status = 0;
};

struct ServerOptions {
    std::string host = "127.0.0.1";  // a non-loopback address prints a warning
    int port = 8765;                 // 0: any free port
    bool try_next_ports = true;      // port taken: try the next 20
    // Host header values accepted besides 127.0.0.1:PORT, localhost:PORT and [::1]:PORT (and the
    // bound address); each is accepted as given and with ":PORT" appended.
    std::vector<std::string> extra_allowed_hosts;
    std::size_t max_streams = 64;      // live event streams; more get 503 and poll instead
    std::size_t worker_threads = 96;   // raised to max_streams + 16 when lower
    std::size_t max_body_bytes = 4096;
    std::chrono::milliseconds keep_alive_timeout{1000};  // an idle connection holds a worker this long
    std::size_t keep_alive_max_requests = 100;  // then the connection closes, letting waiting ones in
    std::chrono::milliseconds read_timeout{2000};      // per read
    std::chrono::milliseconds write_timeout{2000};     // per write
    std::chrono::milliseconds request_timeout{5000};   // a request's head and body must arrive within
    std::chrono::milliseconds stream_heartbeat{1000};  // keep-alive comment on a quiet event stream
    std::function<std::chrono::system_clock::time_point()> clock;  // for the status age; default now
    // Called after each response, on the worker thread that served it (so concurrently).
    std::function<void(const AccessLogEntry&)> access_log;
};

namespace detail {

inline bool is_wildcard_host(std::string_view host) noexcept {
    return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

inline bool is_loopback_host(std::string_view host) {
    if (host == "localhost") return true;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string text(host);
    in_addr v4{};
    if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    return ::inet_pton(AF_INET6, text.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// An IPv6 address in brackets, as in a URL or a Host header; anything else unchanged.
inline std::string bracketed(std::string_view host) {
    const bool ipv6 = host.find(':') != std::string_view::npos && host.front() != '[';
    return ipv6 ? "[" + std::string(host) + "]" : std::string(host);
}

inline std::string host_with_port(std::string_view host, int port) {
    return bracketed(host) + ":" + std::to_string(port);
}

// Feeds promise one line, but a line break in an SSE `data:` field would end the event early, so
// any document that has one is compacted here rather than trusted.
inline std::string one_line_json(std::string json) {
    if (json.find_first_of("\r\n") == std::string::npos) return json;
    const auto doc = nlohmann::json::parse(json, nullptr, false);
    return doc.is_discarded() ? to_json_text(nlohmann::json(json)) : to_json_text(doc);
}

inline std::optional<std::uint64_t> parse_decimal(std::string_view text) noexcept {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

inline std::optional<std::chrono::system_clock::time_point> parse_iso8601_utc(const std::string& text) {
    std::tm tm{};
    char zone = 0;
    // The widths bound every field to 4 or 2 digits: no conversion can overflow, which is what
    // cert-err34-c guards against.
    if (std::sscanf(  // NOLINT(cert-err34-c)
            text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec, &zone) != 7 ||
        zone != 'Z') {
        return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const std::time_t t = ::timegm(&tm);
    if (t == static_cast<std::time_t>(-1)) return std::nullopt;
    return std::chrono::system_clock::from_time_t(t);
}

inline std::string error_body(std::string_view message) {
    return to_json_text(nlohmann::json{{"error", std::string(message)}});
}

inline std::string unavailable_body(const std::string& why, const std::string& status_file) {
    return to_json_text(nlohmann::json{{"error", why}, {"status_file", status_file}});
}

inline std::string render_page(std::string_view token) {
    static constexpr std::string_view placeholder = "__AZOPS_TOKEN__";
    std::string page(dashboard_html);
    const auto at = page.find(placeholder);
    if (at != std::string::npos) page.replace(at, placeholder.size(), is_hex_token(token) ? token : std::string_view());
    return page;
}

// 0.11.4 compresses every body given to set_content whose type is text/* or application/json, with
// brotli at its highest quality whenever the client accepts br, as every browser does: about 100 ms
// of CPU and megabytes of encoder memory for the page, kept by the allocator afterwards. On a
// loopback or tunnelled connection compression buys nothing; a body of known length given through
// a content provider is sent as it is.
inline void set_uncompressed(httplib::Response& res, std::string body, const char* content_type) {
    if (body.empty()) {
        res.set_content(body, content_type);
        return;
    }
    const auto shared = std::make_shared<const std::string>(std::move(body));
    res.set_content_provider(shared->size(), content_type,
                             [shared](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                                 return sink.write(shared->data() + offset, length);
                             });
}

inline std::string sse_event(const FeedSnapshot& snap, const std::string& status_file) {
    const bool ok = !snap.unavailable;
    std::string out = "id: " + std::to_string(snap.version) + "\nevent: " + (ok ? "status" : "unavailable") +
                      "\ndata: " + (ok ? one_line_json(snap.json) : unavailable_body(*snap.unavailable, status_file));
    out += "\n\n";
    return out;
}

// Prometheus text exposition 0.0.4: label values escape backslash, double quote and newline.
inline std::string prometheus_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

inline std::string prometheus_number(double v) {
    std::array<char, 64> buf;
    const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    return ec == std::errc() ? std::string(buf.data(), end) : std::string("NaN");
}

class MetricsText {
public:
    void family(const char* name, const char* help) {
        text_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
    }
    void sample(const char* name, const std::string& labels, double value) {
        text_ += name;
        if (!labels.empty()) text_ += "{" + labels + "}";
        text_ += " " + prometheus_number(value) + "\n";
    }
    void gauge(const char* name, const char* help, const std::string& labels, std::optional<double> value) {
        family(name, help);
        if (value) sample(name, labels, *value);
    }
    std::string take() { return std::move(text_); }

private:
    std::string text_;
};

inline std::optional<double> status_number(const nlohmann::json& doc, const char* key) {
    const auto it = doc.find(key);
    if (it == doc.end() || !it->is_number()) return std::nullopt;
    return it->get<double>();
}

inline std::string status_text(const nlohmann::json& doc, const char* key) {
    const auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

inline std::string render_metrics(const FeedSnapshot& snap, std::size_t sse_clients,
                                  std::chrono::system_clock::time_point now) {
    MetricsText m;
    m.gauge("azops_sse_clients", "Live Server-Sent Events streams of this server.", {},
            static_cast<double>(sse_clients));
    const nlohmann::json doc =
        snap.unavailable ? nlohmann::json() : nlohmann::json::parse(snap.json, nullptr, false);
    const bool available = doc.is_object();
    m.gauge("azops_status_available", "1 when a valid status is available, 0 when it is missing or unreadable.", {},
            available ? 1.0 : 0.0);
    if (!available) return m.take();

    const std::string labels = "task=\"" + prometheus_label_value(status_text(doc, "task")) + "\",operation=\"" +
                               prometheus_label_value(status_text(doc, "operation")) + "\",vm_size=\"" +
                               prometheus_label_value(status_text(doc, "vm_size")) + "\"";
    const auto progress = status_number(doc, "progress_pct");
    m.gauge("azops_progress_ratio", "Progress of the whole task, 0 to 1.", labels,
            progress ? std::optional<double>(*progress / 100.0) : std::nullopt);
    m.gauge("azops_eta_seconds", "Estimated time left, in seconds.", labels, status_number(doc, "eta_seconds"));
    m.gauge("azops_cost_usd", "Compute cost accrued so far, in US dollars.", labels, status_number(doc, "cost_usd"));
    m.gauge("azops_projected_cost_usd", "Cost so far plus the cost of the time left, in US dollars.", labels,
            status_number(doc, "projected_cost_usd"));
    m.gauge("azops_hourly_rate_usd", "Hourly compute rate in force, in US dollars.", labels,
            status_number(doc, "hourly_rate_usd"));
    m.gauge("azops_elapsed_seconds", "Time since the task started, in seconds.", labels,
            status_number(doc, "elapsed_seconds"));
    m.gauge("azops_step", "Current step within the operation (0 when unknown).", labels, status_number(doc, "step"));
    m.gauge("azops_total_steps", "Steps of the operation (0 when unknown).", labels, status_number(doc, "total_steps"));
    m.gauge("azops_tasks_succeeded", "Benchmark tasks passed so far.", labels, status_number(doc, "tasks_succeeded"));
    m.gauge("azops_tasks_failed", "Benchmark tasks failed so far.", labels, status_number(doc, "tasks_failed"));

    const std::string state = status_text(doc, "state");
    m.family("azops_state", "1 for the task's current state, 0 for the others.");
    bool known = false;
    for (const char* s : {"idle", "running", "succeeded", "failed", "cancelled"}) {
        known = known || state == s;
        m.sample("azops_state", labels + ",state=\"" + s + "\"", state == s ? 1.0 : 0.0);
    }
    if (!known && !state.empty()) m.sample("azops_state", labels + ",state=\"" + prometheus_label_value(state) + "\"", 1.0);

    // The bill does not stop with the task: a VM left allocated afterwards costs its rate until it is
    // deallocated, which is what a team watching many VMs most needs an alert on.
    const std::string vm_state = status_text(doc, "vm_state");
    const auto assumed = doc.find("billing_assumed");
    const bool billing_assumed = assumed != doc.end() && assumed->is_boolean() && assumed->get<bool>();
    std::optional<double> billed;
    if (!vm_state.empty()) {
        billed = is_billed(parse_vm_state(vm_state)) ? 1.0 : 0.0;
    } else if (billing_assumed) {
        billed = 1.0;
    }
    m.gauge("azops_vm_billed",
            "1 while the VM is allocated and billed (or its state is unknown), 0 once it is deallocated.", labels,
            billed);
    m.gauge("azops_stalled_seconds", "How long the task has been stuck (0 when it is not).", labels,
            status_number(doc, "stalled_seconds").value_or(0.0));
    const auto updated = parse_iso8601_utc(status_text(doc, "updated_at"));
    m.gauge("azops_status_age_seconds", "Seconds since the status was last updated.", labels,
            updated ? std::optional<double>(std::chrono::duration<double>(now - *updated).count()) : std::nullopt);
    return m.take();
}

inline bool wait_for_fd(int fd, short events, int timeout_ms) noexcept {
    pollfd p{fd, events, 0};
    for (;;) {
        const int n = ::poll(&p, 1, std::max(0, timeout_ms));
        if (n < 0 && errno == EINTR) continue;
        return n > 0;
    }
}

inline void peer_text(const sockaddr_storage& addr, std::string& ip, int& port) {
    std::array<char, INET6_ADDRSTRLEN> buf{};
    if (addr.ss_family == AF_INET) {
        const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
        ::inet_ntop(AF_INET, &a.sin_addr, buf.data(), buf.size());
        port = ntohs(a.sin_port);
    } else if (addr.ss_family == AF_INET6) {
        const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
        ::inet_ntop(AF_INET6, &a.sin6_addr, buf.data(), buf.size());
        port = ntohs(a.sin6_port);
    }
    ip = buf.data();
}

// The stream a connection's requests are read from: buffered reads, each bounded by the read
// timeout and all of one request by its deadline (one byte every few seconds never holds a worker
// for long), writes bounded by the write timeout and never raising SIGPIPE.
class ConnectionStream final : public httplib::Stream {
public:
    ConnectionStream(int fd, std::chrono::milliseconds read_timeout, std::chrono::milliseconds write_timeout)
        : fd_(fd), read_timeout_(read_timeout), write_timeout_(write_timeout) {}

    void set_request_deadline(std::chrono::steady_clock::time_point deadline) noexcept { deadline_ = deadline; }
    bool has_buffered_input() const noexcept { return begin_ < end_; }

    bool is_readable() const override {
        return has_buffered_input() || wait_for_fd(fd_, POLLIN, read_budget_ms());
    }
    bool is_writable() const override {
        return wait_for_fd(fd_, POLLOUT, static_cast<int>(write_timeout_.count()));
    }

    ssize_t read(char* ptr, size_t size) override {
        if (!has_buffered_input()) {
            const ssize_t n = fill();
            if (n <= 0) return n;
        }
        const std::size_t count = std::min(size, end_ - begin_);
        std::memcpy(ptr, buffer_.data() + begin_, count);
        begin_ += count;
        return static_cast<ssize_t>(count);
    }

    ssize_t write(const char* ptr, size_t size) override {
        if (!is_writable()) return -1;
        for (;;) {
            const ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            return n;
        }
    }

    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) peer_text(addr, ip, port);
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) peer_text(addr, ip, port);
    }
    socket_t socket() const override { return fd_; }

private:
    int read_budget_ms() const noexcept {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
        return static_cast<int>(std::max<std::int64_t>(0, std::min(left, read_timeout_).count()));
    }

    ssize_t fill() {
        if (read_budget_ms() <= 0 || !wait_for_fd(fd_, POLLIN, read_budget_ms())) return -1;
        for (;;) {
            const ssize_t n = ::recv(fd_, buffer_.data(), buffer_.size(), 0);
            if (n < 0 && errno == EINTR) continue;
            begin_ = 0;
            end_ = n > 0 ? static_cast<std::size_t>(n) : 0;
            return n;
        }
    }

    const int fd_;
    const std::chrono::milliseconds read_timeout_;
    const std::chrono::milliseconds write_timeout_;
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
    std::array<char, 4096> buffer_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

struct ConnectionLimits {
    std::chrono::milliseconds read_timeout;
    std::chrono::milliseconds write_timeout;
    std::chrono::milliseconds request_timeout;
    std::chrono::milliseconds keep_alive_timeout;
    std::size_t keep_alive_max_requests;
};

// cpp-httplib 0.11.4's Server with its per-connection loop replaced (the virtual
// process_and_close_socket), so that: every open connection is known and stop() can shut them all
// down at once instead of waiting for each keep-alive or slow client; a request must arrive whole
// within its deadline; accepted sockets are close-on-exec and unbuffered (TCP_NODELAY); and a
// handler can have its connection closed after a refused request whose body was never read.
class HardenedHttpServer final : public httplib::Server {
public:
    explicit HardenedHttpServer(ConnectionLimits limits) : limits_(limits) {}

    // From a handler: the connection of this worker ends after the current response.
    void close_current_connection() {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = connections_.find(std::this_thread::get_id());
        if (it != connections_.end()) it->second.close_after_response = true;
    }

    // Wakes every worker blocked on a client; connections accepted later are closed at once.
    void shut_down_connections() {
        std::lock_guard<std::mutex> lock(mutex_);
        shutting_down_ = true;
        for (const auto& entry : connections_) ::shutdown(entry.second.fd, SHUT_RDWR);
    }

    // 0.11.4 listens with a backlog of 5, which a burst of browser connections overflows.
    void widen_backlog(int backlog) noexcept {
        const socket_t sock = svr_sock_;
        if (sock != INVALID_SOCKET) ::listen(sock, backlog);
    }

private:
    struct Connection {
        int fd = -1;
        bool close_after_response = false;
    };

    bool process_and_close_socket(socket_t sock) override {
        const bool admitted = enter(sock);
        bool ok = false;
        if (admitted) {
            ok = serve_connection(sock);
            leave();
        }
        ::shutdown(sock, SHUT_RDWR);
        ::close(sock);
        return ok;
    }

    bool enter(int sock) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (shutting_down_) return false;
        connections_[std::this_thread::get_id()] = Connection{sock, false};
        return true;
    }

    void leave() {
        std::lock_guard<std::mutex> lock(mutex_);
        connections_.erase(std::this_thread::get_id());
    }

    bool should_close() {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = connections_.find(std::this_thread::get_id());
        return shutting_down_ || it == connections_.end() || it->second.close_after_response;
    }

    bool serve_connection(int sock) {
        ::fcntl(sock, F_SETFD, FD_CLOEXEC);
        const int on = 1;
        ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        ConnectionStream stream(sock, limits_.read_timeout, limits_.write_timeout);
        bool ok = true;
        for (std::size_t left = limits_.keep_alive_max_requests; left > 0; --left) {
            if (!stream.has_buffered_input() &&
                !wait_for_fd(sock, POLLIN, static_cast<int>(limits_.keep_alive_timeout.count()))) {
                break;
            }
            if (should_close()) break;
            stream.set_request_deadline(std::chrono::steady_clock::now() + limits_.request_timeout);
            bool client_closed = false;
            try {
                ok = process_request(stream, left == 1, client_closed, nullptr);
            } catch (...) {  // an exception from a streaming provider must not end the process
                ok = false;
            }
            if (!ok || client_closed || should_close()) break;
        }
        return ok;
    }

    const ConnectionLimits limits_;
    std::mutex mutex_;
    std::unordered_map<std::thread::id, Connection> connections_;
    bool shutting_down_ = false;
};

// Every Host-header spelling of the bound address that this machine answers to, for a server bound
// to all interfaces: its interface addresses and its host name.
inline std::vector<std::string> local_host_names() {
    std::vector<std::string> names;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) == 0) {
        for (const ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
            if (it->ifa_addr == nullptr) continue;
            sockaddr_storage addr{};
            const int family = it->ifa_addr->sa_family;
            if (family != AF_INET && family != AF_INET6) continue;
            std::memcpy(&addr, it->ifa_addr, family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
            std::string ip;
            int unused_port = 0;
            peer_text(addr, ip, unused_port);
            if (!ip.empty()) names.push_back(ip);
        }
        ::freeifaddrs(list);
    }
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) == 0 && host[0] != '\0') names.emplace_back(host.data());
    return names;
}

}  // namespace detail

class StatusServer {
public:
    explicit StatusServer(std::shared_ptr<StatusFeed> feed, ServerOptions options = {})
        : feed_(std::move(feed)), options_(std::move(options)) {
        if (!feed_) throw std::invalid_argument("StatusServer needs a status feed");
        if (!options_.clock) options_.clock = [] { return std::chrono::system_clock::now(); };
        status_file_ = feed_->status_file();
        http_ = std::make_unique<detail::HardenedHttpServer>(detail::ConnectionLimits{
            options_.read_timeout, options_.write_timeout, options_.request_timeout, options_.keep_alive_timeout,
            std::max<std::size_t>(1, options_.keep_alive_max_requests)});
        harden();
        add_routes();
    }

    ~StatusServer() { stop(); }

    StatusServer(const StatusServer&) = delete;
    StatusServer& operator=(const StatusServer&) = delete;

    // Binds, starts serving on a thread of its own and returns the port.
    int start() {
        std::lock_guard<std::mutex> lock(lifecycle_mutex_);
        if (started_) throw std::logic_error("StatusServer::start() was called twice");
        const int port = bind();
        http_->widen_backlog(128);
        port_ = port;
        build_allow_lists();
        if (!detail::is_loopback_host(options_.host)) warn_exposed();
        started_ = true;
        listener_ = std::thread([this] { http_->listen_after_bind(); });
        // stop() is a no-op until the listening loop has begun; make sure it has.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!http_->is_running() && std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return port;
    }

    // Ends every stream and connection and returns once the workers are gone (well under a second).
    void stop() {
        std::lock_guard<std::mutex> lock(lifecycle_mutex_);
        if (!started_ || stopped_) return;
        stopped_ = true;
        stopping_ = true;
        http_->stop();
        http_->shut_down_connections();
        listener_.join();
    }

    int port() const noexcept { return port_; }

    // http://127.0.0.1:PORT/ (the address a browser on this machine should open); "" before start().
    std::string url() const {
        if (port_ <= 0) return {};
        const std::string& h = options_.host;
        const std::string shown = h == "::" || h == "[::]" ? "::1" : detail::is_wildcard_host(h) ? "127.0.0.1" : h;
        return "http://" + detail::host_with_port(shown, port_) + "/";
    }

    std::size_t live_streams() const noexcept { return streams_.load(); }

private:
    using HandlerResponse = httplib::Server::HandlerResponse;

    void harden() {
        const std::size_t workers = std::max(options_.worker_threads, options_.max_streams + 16);
        http_->new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
        // 0.11.4 sets SO_REUSEPORT, which lets another process bind the same port and take half of
        // the connections (Stop requests included); SO_REUSEADDR alone keeps the port ours.
        http_->set_socket_options([](socket_t sock) {
            const int yes = 1;
            ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
            ::fcntl(sock, F_SETFD, FD_CLOEXEC);
        });
        const auto whole_seconds = [](std::chrono::milliseconds d) {
            return static_cast<time_t>(std::max<std::int64_t>(1, (d.count() + 999) / 1000));
        };
        http_->set_keep_alive_timeout(whole_seconds(options_.keep_alive_timeout));
        http_->set_keep_alive_max_count(std::max<std::size_t>(1, options_.keep_alive_max_requests));
        http_->set_read_timeout(options_.read_timeout);
        http_->set_write_timeout(options_.write_timeout);
        http_->set_payload_max_length(options_.max_body_bytes);
        http_->set_default_headers({
            {"X-Content-Type-Options", "nosniff"},
            {"Content-Security-Policy",
             "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
             "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
            {"Referrer-Policy", "no-referrer"},
        });
        // Without it, 0.11.4 puts the exception's text in an EXCEPTION_WHAT response header.
        http_->set_exception_handler([](const httplib::Request&, httplib::Response& res, const std::exception_ptr&) {
            res.status = 500;
            res.set_content(detail::error_body("internal error"), "application/json");
        });
        http_->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
            if (!res.body.empty() || res.is_chunked_content_provider_ || res.content_length_ > 0) {
                return HandlerResponse::Unhandled;
            }
            res.set_content(detail::error_body(res.status == 404   ? "not found"
                                               : res.status == 405 ? "method not allowed"
                                                                   : "request refused"),
                            "application/json");
            return HandlerResponse::Handled;
        }));
        http_->set_pre_routing_handler(
            [this](const httplib::Request& req, httplib::Response& res) { return screen(req, res); });
        http_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
            // cpp-httplib answers a malformed request (an over-long line, say) itself and would then
            // read its leftover bytes as the next request: an error answer ends the connection.
            if (res.status >= 400) http_->close_current_connection();
            if (options_.access_log) {
                options_.access_log(AccessLogEntry{req.remote_addr, req.remote_port, req.method, req.path, res.status});
            }
        });
    }

    void add_routes() {
        const auto page = [this](const httplib::Request&, httplib::Response& res) { serve_page(res); };
        http_->Get("/", page);
        http_->Get("/azure_ops\\.html", page);
        http_->Get("/api/azure-ops-status", [this](const httplib::Request&, httplib::Response& res) { serve_status(res); });
        http_->Get("/api/azure-ops-events",
                   [this](const httplib::Request& req, httplib::Response& res) { serve_events(req, res); });
        http_->Post("/api/azure-ops/cancel",
                    [this](const httplib::Request& req, httplib::Response& res) { serve_cancel(req, res); });
        http_->Get("/api/azure-ops/cancel", [](const httplib::Request&, httplib::Response& res) {
            res.status = 405;
            res.set_header("Allow", "POST");
        });
        http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { serve_metrics(res); });
        http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
            res.set_header("Cache-Control", "no-store");
            res.set_content("ok", "text/plain; charset=utf-8");
        });
    }

    int bind() {
        const int first = options_.port;
        if (first < 0 || first > 65535) throw std::runtime_error("invalid port " + std::to_string(first));
        if (first == 0) {
            const int port = http_->bind_to_any_port(options_.host);
            if (port > 0) return port;
        } else {
            const int last = options_.try_next_ports ? std::min(first + 20, 65535) : first;
            for (int port = first; port <= last; ++port) {
                if (http_->bind_to_port(options_.host, port)) return port;
            }
        }
        const std::string where = options_.host + " port " + std::to_string(first);
        throw std::runtime_error(
            "cannot listen on " + where +
            (first != 0 && options_.try_next_ports ? " or the 20 ports after it" : std::string()) +
            ": the port is in use, or the address is not one of this machine's; choose another --port "
            "(0 picks any free port)");
    }

    void build_allow_lists() {
        std::vector<std::string> names = {"127.0.0.1", "localhost", "::1"};
        if (!detail::is_wildcard_host(options_.host)) {
            names.push_back(options_.host);
        } else {
            for (auto& n : detail::local_host_names()) names.push_back(std::move(n));
        }
        for (const auto& name : names) {
            add_allowed_host(detail::host_with_port(name, port_), true);
            if (port_ == 80) add_allowed_host(detail::bracketed(name), true);  // browsers omit the default port
        }
        for (const auto& extra : options_.extra_allowed_hosts) {
            add_allowed_host(extra, false);
            add_allowed_host(extra + ":" + std::to_string(port_), true);
        }
    }

    void add_allowed_host(const std::string& host, bool as_origin) {
        allowed_hosts_.push_back(detail::text::lower_ascii(host));
        if (as_origin) allowed_origins_.push_back("http://" + detail::text::lower_ascii(host));
    }

    void warn_exposed() const {
        std::cerr << "azops: warning: the status server listens on " << options_.host << ":" << port_
                  << ", which other machines may reach; anyone who can connect sees the status (Stop still "
                     "needs the run token)\n";
    }

    static bool listed(const std::vector<std::string>& list, const std::string& value) {
        const std::string lowered = detail::text::lower_ascii(value);
        return std::find(list.begin(), list.end(), lowered) != list.end();
    }

    // The one value of a header that must appear at most once; nullopt when absent or repeated.
    // Read from the header map itself: get_header_value() returns a C string, which would cut a
    // percent-decoded "%00" and everything after it.
    static std::optional<std::string> single_header(const httplib::Request& req, const char* name) {
        const auto range = req.headers.equal_range(name);
        if (range.first == range.second || std::next(range.first) != range.second) return std::nullopt;
        return range.first->second;
    }

    // The body, if any, is never read; the error status also ends the connection (see the logger).
    static HandlerResponse refuse(httplib::Response& res, int status, std::string_view message) {
        res.status = status;
        res.set_header("Cache-Control", "no-store");
        res.set_content(detail::error_body(message), "application/json");
        return HandlerResponse::Handled;
    }

    // Runs before any body is read. Refuses what this server never needs and what cpp-httplib 0.11.4
    // cannot bound: chunked bodies and compressed bodies ignore the payload limit.
    HandlerResponse screen(const httplib::Request& req, httplib::Response& res) {
        const auto host = single_header(req, "Host");
        if (!host || !listed(allowed_hosts_, *host)) {
            return refuse(res, 403, "this server answers only to its own address (Host header refused)");
        }
        if (req.has_header("Transfer-Encoding")) return refuse(res, 400, "chunked request bodies are not accepted");
        if (req.has_header("Content-Encoding")) return refuse(res, 415, "compressed request bodies are not accepted");
        if (detail::text::lower_ascii(req.get_header_value("Content-Type")).find("multipart/") != std::string::npos) {
            return refuse(res, 415, "multipart request bodies are not accepted");
        }
        if (req.has_header("Content-Length")) {
            const auto text = single_header(req, "Content-Length");
            const auto length = text ? detail::parse_decimal(*text) : std::nullopt;
            if (!length) return refuse(res, 400, "invalid or repeated Content-Length");
            if (*length > options_.max_body_bytes) return refuse(res, 413, "request body too large");
            if (*length > 0 && req.method != "POST") return refuse(res, 400, "this request takes no body");
        } else if (req.method == "POST") {
            // Without a length, 0.11.4 reads a POST body until the client closes the connection.
            return refuse(res, 411, "Content-Length required");
        }
        return HandlerResponse::Unhandled;
    }

    void serve_page(httplib::Response& res) {
        res.set_header("Cache-Control", "no-store");  // the page carries the run token
        detail::set_uncompressed(res, detail::render_page(feed_->token()), "text/html; charset=utf-8");
    }

    void serve_status(httplib::Response& res) {
        const FeedSnapshot snap = feed_->snapshot();
        res.set_header("Cache-Control", "no-store");
        if (snap.unavailable) {
            res.status = 503;
            detail::set_uncompressed(res, detail::unavailable_body(*snap.unavailable, status_file_), "application/json");
        } else {
            detail::set_uncompressed(res, snap.json, "application/json");
        }
    }

    void serve_metrics(httplib::Response& res) {
        res.set_header("Cache-Control", "no-store");
        detail::set_uncompressed(res, detail::render_metrics(feed_->snapshot(), streams_.load(), options_.clock()),
                                 "text/plain; version=0.0.4; charset=utf-8");
    }

    void serve_cancel(const httplib::Request& req, httplib::Response& res) {
        res.set_header("Cache-Control", "no-store");
        const auto answer = [&res](int status, bool ok, std::string_view message) {
            res.status = status;
            res.set_content(to_json_text(nlohmann::json{{"ok", ok}, {"message", std::string(message)}}),
                            "application/json");
        };
        if (req.has_header("Origin")) {
            const auto origin = single_header(req, "Origin");
            if (!origin || !listed(allowed_origins_, *origin)) return answer(403, false, "cross-origin request refused");
        }
        if (req.has_header("Sec-Fetch-Site")) {
            const auto site = single_header(req, "Sec-Fetch-Site");
            const std::string value = site ? detail::text::lower_ascii(*site) : std::string();
            if (value != "same-origin" && value != "none") {
                return answer(403, false, "cross-site request refused");
            }
        }
        const auto presented = single_header(req, "X-Azops-Token");
        if (!presented || presented->empty()) return answer(403, false, "the run token is missing");
        const std::string expected = feed_->token();
        if (expected.empty()) return answer(409, false, "this server has no run token: the task cannot be stopped from here");
        if (!detail::constant_time_equal(*presented, expected)) return answer(403, false, "wrong run token");
        const CancelOutcome outcome = feed_->request_cancel();
        answer(outcome.accepted ? 202 : 409, outcome.accepted, outcome.message);
    }

    struct EventStream {
        std::optional<std::uint64_t> last_sent;  // Last-Event-ID at first
        bool greeted = false;
        std::chrono::steady_clock::time_point next_heartbeat;
    };

    bool reserve_stream() noexcept {
        std::size_t live = streams_.load();
        do {
            if (live >= options_.max_streams) return false;
        } while (!streams_.compare_exchange_weak(live, live + 1));
        return true;
    }

    void serve_events(const httplib::Request& req, httplib::Response& res) {
        if (stopping_ || !reserve_stream()) {
            res.status = 503;
            res.set_header("Retry-After", "2");
            res.set_header("Cache-Control", "no-store");
            res.set_content(detail::error_body("too many live event streams; poll /api/azure-ops-status"),
                            "application/json");
            return;
        }
        auto stream = std::make_shared<EventStream>();
        if (const auto last = single_header(req, "Last-Event-ID")) stream->last_sent = detail::parse_decimal(*last);
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Accel-Buffering", "no");
        // Exactly text/event-stream: 0.11.4 compresses every other text/* type, and a compressed
        // event stream stays in the compressor's buffer instead of reaching the browser.
        res.set_chunked_content_provider(
            "text/event-stream",
            [this, stream](std::size_t, httplib::DataSink& sink) { return pump_events(*stream, sink); },
            [this](bool) { streams_.fetch_sub(1); });
    }

    // Called by cpp-httplib in a loop until it returns false. Each call blocks until it has
    // something to write (an event, or a heartbeat once a second) and always writes: 0.11.4 spins on
    // a provider that returns without writing, and only a failed write reveals a client that left.
    bool pump_events(EventStream& stream, httplib::DataSink& sink) {
        using Clock = std::chrono::steady_clock;
        try {
            std::string out;
            if (!stream.greeted) {
                stream.greeted = true;
                out = "retry: 2000\n\n";
            }
            for (;;) {
                if (stopping_) return false;
                const FeedSnapshot snap = feed_->snapshot();
                if (stream.last_sent != snap.version) {
                    out += detail::sse_event(snap, status_file_);
                    stream.last_sent = snap.version;
                    break;
                }
                if (!out.empty()) break;
                const auto now = Clock::now();
                if (now >= stream.next_heartbeat) {
                    out = ": keep-alive\n\n";
                    break;
                }
                const auto slice = std::min<Clock::duration>(std::chrono::milliseconds(200), stream.next_heartbeat - now);
                feed_->wait_for_change(snap.version, std::chrono::duration_cast<std::chrono::milliseconds>(slice) +
                                                         std::chrono::milliseconds(1));
            }
            stream.next_heartbeat = Clock::now() + options_.stream_heartbeat;
            return sink.write(out.data(), out.size());
        } catch (...) {
            return false;
        }
    }

    const std::shared_ptr<StatusFeed> feed_;
    ServerOptions options_;
    std::string status_file_;
    std::unique_ptr<detail::HardenedHttpServer> http_;
    std::vector<std::string> allowed_hosts_;    // lower case; written once before the listener starts
    std::vector<std::string> allowed_origins_;  // lower case
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> streams_{0};
    int port_ = -1;

    std::mutex lifecycle_mutex_;
    bool started_ = false;
    bool stopped_ = false;
    std::thread listener_;
};

}  // namespace azops
// #include <azops/server.hpp> — end
#endif
// #include <azops/azops.hpp> — end
