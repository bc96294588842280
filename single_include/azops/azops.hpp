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
#include <utility>
#include <vector>

namespace azops {

// A sanitised line never holds more than this many bytes of text, plus the cut marker.
inline constexpr std::size_t max_line_bytes = 4096;

namespace detail {

inline constexpr char escape_byte = '\x1b';
inline constexpr std::string_view replacement_char = "\xEF\xBF\xBD";  // U+FFFD

// True when every byte is printable ASCII: such a line needs no work. Eight bytes at a time,
// since most build output is plain ASCII and this check runs for every line.
inline bool is_plain_ascii(std::string_view s) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    constexpr std::uint64_t highs = 0x8080808080808080ULL;
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, s.data() + i, 8);
        const std::uint64_t below_space = (w - ones * 0x20) & ~w & highs;
        const std::uint64_t x7f = w ^ (ones * 0x7F);
        const std::uint64_t is_del = (x7f - ones) & ~x7f & highs;
        if ((below_space | is_del | (w & highs)) != 0) return false;
    }
    for (; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c >= 0x7F) return false;
    }
    return true;
}

// The part of a line a terminal would finally show after carriage returns: trailing `\r`s
// (CRLF endings) are dropped, then only the text after the last remaining `\r` is kept.
inline std::string_view after_last_carriage_return(std::string_view s) noexcept {
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
    unsigned char lo = 0x80, hi = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) need = 1;
    else if (lead == 0xE0) { need = 2; lo = 0xA0; }
    else if (lead >= 0xE1 && lead <= 0xEC) need = 2;
    else if (lead == 0xED) { need = 2; hi = 0x9F; }
    else if (lead >= 0xEE && lead <= 0xEF) need = 2;
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

// Appends `piece` unless the line is already full; counts what did not fit.
struct BoundedLine {
    std::string& out;
    std::size_t cut_bytes = 0;

    void append(std::string_view piece) {
        if (cut_bytes == 0 && out.size() + piece.size() <= max_line_bytes) {
            out.append(piece);
        } else {
            cut_bytes += piece.size();
        }
    }
};

}  // namespace detail

// Sanitises `raw` and returns a view of the result: `raw` itself when it is already clean (no
// allocation), otherwise a view into `scratch`, which the caller keeps alive while using the view.
inline std::string_view sanitize_line_into(std::string_view raw, std::string& scratch) {
    if (raw.size() <= max_line_bytes && detail::is_plain_ascii(raw)) return raw;
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
            const bool printable = c >= 0x20 ? c != 0x7F : c == '\t';
            if (printable) line.append(text.substr(i, 1));
            ++i;
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
    if (line.cut_bytes != 0) {
        scratch += " \xE2\x80\xA6[cut " + std::to_string(line.cut_bytes) + " bytes]";
    }
    return scratch;
}

// Sanitises one raw output line (without its trailing '\n') into valid, bounded UTF-8 text.
inline std::string sanitize_line(std::string_view raw) {
    std::string scratch;
    const std::string_view clean = sanitize_line_into(raw, scratch);
    if (clean.data() != scratch.data()) return std::string(clean);
    return scratch;
}

// Splits a byte stream into lines, across chunk boundaries, without unbounded buffering: a line
// longer than `max_buffered` keeps only its head and the count of bytes dropped, so a 16 MiB line
// without a newline costs at most `max_buffered` bytes of memory.
class LineSplitter {
public:
    explicit LineSplitter(std::size_t max_buffered = 64 * 1024) : max_buffered_(max_buffered) {}

    // Calls `on_line(std::string_view raw_line)` for every complete line in `chunk`.
    template <typename OnLine>
    void feed(std::string_view chunk, OnLine&& on_line) {
        while (!chunk.empty()) {
            const void* nl = std::memchr(chunk.data(), '\n', chunk.size());
            if (nl == nullptr) {
                buffer(chunk);
                return;
            }
            const auto len = static_cast<std::size_t>(static_cast<const char*>(nl) - chunk.data());
            if (pending_.empty() && dropped_ == 0) {
                on_line(chunk.substr(0, len));
            } else {
                buffer(chunk.substr(0, len));
                emit_pending(on_line);
            }
            chunk.remove_prefix(len + 1);
        }
    }

    // Emits the last unterminated line, if any (call once at end of stream).
    template <typename OnLine>
    void finish(OnLine&& on_line) {
        if (!pending_.empty() || dropped_ != 0) emit_pending(on_line);
    }

    bool has_partial() const noexcept { return !pending_.empty() || dropped_ != 0; }

private:
    void buffer(std::string_view piece) {
        const std::size_t room = max_buffered_ - std::min(max_buffered_, pending_.size());
        const std::size_t take = std::min(room, piece.size());
        pending_.append(piece.substr(0, take));
        dropped_ += piece.size() - take;
    }

    template <typename OnLine>
    void emit_pending(OnLine& on_line) {
        if (dropped_ != 0) {
            pending_ += " \xE2\x80\xA6[cut " + std::to_string(dropped_) + " bytes]";
        }
        on_line(std::string_view(pending_));
        pending_.clear();
        dropped_ = 0;
    }

    std::size_t max_buffered_;
    std::string pending_;
    std::size_t dropped_ = 0;
};

// The last `capacity` lines, oldest first; pushing beyond capacity drops the oldest. A ring, so a
// task that logs ten million lines holds exactly `capacity` of them.
class LogTail {
public:
    explicit LogTail(std::size_t capacity = 50) : ring_(capacity == 0 ? 1 : capacity) {}

    void push(std::string line) {
        ring_[next_] = std::move(line);
        next_ = (next_ + 1) % ring_.size();
        if (size_ < ring_.size()) ++size_;
        ++total_;
    }

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

#include <chrono>
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

};

// "2026-11-29T03:38:45Z": ISO-8601, UTC, whole seconds.
inline std::string iso8601_utc(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(
        std::chrono::time_point_cast<std::chrono::seconds>(t));
    std::tm utc{};
    gmtime_r(&secs, &utc);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return buf;
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
// is kept in `stats().last_error` (and handed to the owner through `on_write_error`).

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
    return std::string(what) + " " + path.string() + ": " + std::strerror(err);
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
        result.error = detail::errno_text("cannot write", temp, err);
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
    // and fallbacks. Creates the target's folder; throws std::filesystem::filesystem_error if it cannot.
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

    // Something changed: write soon. Only the first call after a write takes the lock.
    void notify() noexcept {
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
        if (!result.error.empty()) {
            stats_.last_error = result.error;
            if (on_write_error_) on_write_error_(result);
        }
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

    mutable std::mutex write_mutex_;  // one write at a time; guards stats_
    StatusWriterStats stats_;

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
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

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
            const char* name = ::strsignal(*signal);
            return "killed by signal " + std::to_string(*signal) + (name ? std::string(" (") + name + ")" : "");
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

// RAII for the spawn attribute objects, so every exit path releases them.
struct SpawnSetup {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    SpawnSetup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
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
        int out[2];
        if (::pipe2(out, O_CLOEXEC) != 0) throw SpawnError(std::string("cannot create a pipe: ") + std::strerror(errno));
        child.read_fd_ = out[0];
        if (::pipe2(child.wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
            ::close(out[1]);
            throw SpawnError(std::string("cannot create a pipe: ") + std::strerror(errno));
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
        std::array<char, 64 * 1024> buffer{};
        while (true) {
            pollfd fds[2] = {{read_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
            const nfds_t count = read_fd_ >= 0 ? 2 : 1;
            pollfd* set = read_fd_ >= 0 ? fds : fds + 1;
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
        sigset_t defaults;
        sigemptyset(&defaults);
        for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGTTOU, SIGTTIN}) sigaddset(&defaults, sig);
        sigset_t empty;
        sigemptyset(&empty);
        posix_spawnattr_setsigdefault(&setup.attr, &defaults);
        posix_spawnattr_setsigmask(&setup.attr, &empty);
        posix_spawnattr_setpgroup(&setup.attr, 0);
        posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
        std::vector<char*> args;
        args.reserve(argv.size() + 1);
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        return posix_spawnp(&pid, args[0], &setup.actions, &setup.attr, args.data(), environ);
    }

    static std::string spawn_error_message(const std::string& command, int err) {
        if (err == ENOENT) return "command not found: " + command;
        if (err == EACCES) return "permission denied (not executable?): " + command;
        return "cannot start " + command + ": " + std::strerror(err);
    }

    void signal_group(int sig) const noexcept {
        // The group outlives its leader; signal it before the leader is reaped so the id stays ours.
        if (pid_ > 0) ::kill(-pid_, sig);
    }

    void drain_wake_pipe() const noexcept {
        char sink[64];
        while (::read(wake_[0], sink, sizeof sink) > 0) {
        }
    }

    std::optional<ExitStatus> try_reap() noexcept {
        int wstatus = 0;
        const pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
        if (r == pid_) return detail::exit_status_from_wait(wstatus);
        return std::nullopt;
    }

    ExitStatus reap_blocking() noexcept {
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

    pid_t pid_ = -1;
    int read_fd_ = -1;
    int wake_[2] = {-1, -1};
};

}  // namespace azops
// #include <azops/process.hpp> — end
// #include <azops/tracker.hpp> — begin
// azops/tracker.hpp — azops::Tracker, the one object a program talks to.
//
// Owns: the state of one task (operations, phases, steps, log tail, VM, final state), the run token
// and stop requests, and the StatusWriter that publishes it to the status file. Every change is made
// in memory under one mutex; the file is written by the writer's thread, never on the thread that
// calls `log`.
// Thread-safety: every member function may be called from any thread.
// Errors: the constructor throws std::filesystem::filesystem_error when the status folder cannot be
// created; after that nothing throws into the caller: write failures become the status's `notice`.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
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


namespace azops {

using WallClock = std::function<std::chrono::system_clock::time_point()>;

struct TrackerOptions {
    std::filesystem::path status_file = "benchmark_results/azure_ops_status.json";
    WallClock clock;                                // defaults to std::chrono::system_clock::now
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
    static constexpr char hex[] = "0123456789abcdef";
    std::string token;
    for (int i = 0; i < 6; ++i) {  // 192 bits
        const std::uint32_t word = entropy();
        for (int shift = 0; shift < 32; shift += 8) {
            const auto byte = static_cast<unsigned>((word >> shift) & 0xFFu);
            token += hex[byte >> 4];
            token += hex[byte & 0xFu];
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

}  // namespace detail

class Tracker {
public:
    using Clock = std::chrono::system_clock;

    explicit Tracker(TrackerOptions options = {})
        : options_(std::move(options)),
          tail_(options_.log_lines),
          token_(detail::random_token()) {
        if (!options_.clock) options_.clock = [] { return Clock::now(); };
        status_.status_file = absolute_path(options_.status_file);
        status_.started_at = iso8601_utc(options_.clock());
        status_.state = "idle";
        writer_ = std::make_unique<StatusWriter>(
            StatusWriterOptions{options_.status_file, options_.min_write_interval, options_.heartbeat,
                                options_.stop_request_poll},
            [this] { return render(); }, [this] { look_for_stop_request(); },
            [this](const AtomicWriteResult& r) { note_write_problem(r); });
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
        }
        write_token_file();
        writer_->set_heartbeat(true);
        changed();
    }

    // Enters a new operation: closes the previous timeline entry (succeeded) and opens one.
    void operation(std::string name, int total_steps = 0) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto now = options_.clock();
            close_timeline_entry(now, "succeeded");
            status_.operation = name;
            status_.phase.clear();
            status_.detail.clear();
            status_.step = 0;
            status_.total_steps = std::max(0, total_steps);
            status_.timeline.push_back(TimelineEntry{std::move(name), "running", iso8601_utc(now), std::nullopt, 0.0});
            operation_started_ = now;
        }
        changed();
    }

    void phase(std::string phase, std::string detail = {}) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.phase = std::move(phase);
            if (!detail.empty()) status_.detail = sanitize_line(detail);
        }
        changed();
    }

    // Step `step` of `total` inside the current operation (1-based); progress follows unless the
    // program reports percentages itself through `progress`.
    void step(int step, int total, std::string detail = {}) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.total_steps = std::max(0, total);
            status_.step = std::clamp(step, 0, std::max(status_.total_steps, step));
            if (!detail.empty()) status_.detail = sanitize_line(detail);
            if (!explicit_progress_ && status_.total_steps > 0) {
                set_progress_locked(100.0 * std::max(0, status_.step - 1) / status_.total_steps);
            }
        }
        changed();
    }

    // Progress of the whole task, 0–100; values outside are clamped, and it never goes backwards
    // within one task.
    void progress(double pct) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            explicit_progress_ = true;
            set_progress_locked(pct);
        }
        changed();
    }

    void detail(std::string text) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.detail = sanitize_line(text);
        }
        changed();
    }

    // One raw output line (without '\n'). Sanitised here; the file is written later by the writer.
    void log(std::string_view raw_line) {
        std::string scratch;
        const std::string_view clean = sanitize_line_into(raw_line, scratch);
        std::string line(clean);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            tail_.push(std::move(line));
            last_output_ = options_.clock();
        }
        writer_->notify();
    }

    void set_vm(const VmInfo& vm) {
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
        }
        changed();
    }

    void notice(std::optional<std::string> text) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            status_.notice = text ? std::optional<std::string>(sanitize_line(*text)) : std::nullopt;
        }
        changed();
    }

    void succeed() { finish("succeeded", std::nullopt); }
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

    void set_progress_locked(double pct) {
        pct = std::clamp(pct, 0.0, 100.0);
        status_.progress_pct = std::max(status_.progress_pct, pct);
    }

    void close_timeline_entry(Clock::time_point now, const char* state) {
        if (status_.timeline.empty() || status_.timeline.back().ended_at) return;
        auto& entry = status_.timeline.back();
        entry.state = state;
        entry.ended_at = iso8601_utc(now);
        entry.duration_seconds = detail::seconds_between(operation_started_, now);
    }

    void finish(const char* state, std::optional<std::string> error) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            finish_locked(state, std::move(error));
        }
        writer_->set_heartbeat(false);
        writer_->flush();
    }

    void finish_locked(const char* state, std::optional<std::string> error) {
        const auto now = options_.clock();
        close_timeline_entry(now, state);
        status_.state = state;
        status_.cancellable = false;
        status_.error = error ? std::optional<std::string>(sanitize_line(*error)) : std::nullopt;
        if (status_.state == "succeeded") status_.progress_pct = 100.0;
        status_.eta_seconds = std::nullopt;
        finished_ = now;
    }

    OpsStatus snapshot_locked() const {
        OpsStatus s = status_;
        const auto now = options_.clock();
        s.log_tail = tail_.lines();
        s.updated_at = iso8601_utc(now);
        s.elapsed_seconds = started_ ? detail::seconds_between(*started_, finished_.value_or(now)) : 0.0;
        if (!s.timeline.empty() && !s.timeline.back().ended_at) {
            s.timeline.back().duration_seconds = detail::seconds_between(operation_started_, now);
        }
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
        if (!result.ok) note_write_problem(result);
    }

    void remove_run_files() noexcept {
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

    void note_write_problem(const AtomicWriteResult& result) {
        std::lock_guard<std::mutex> lock(mutex_);
        status_.notice = sanitize_line(result.error);
    }

    TrackerOptions options_;
    mutable std::mutex mutex_;  // guards everything below up to publish_mutex_
    OpsStatus status_;
    LogTail tail_;
    std::optional<Clock::time_point> started_;
    std::optional<Clock::time_point> finished_;
    std::optional<Clock::time_point> last_output_;
    Clock::time_point operation_started_{};
    bool explicit_progress_ = false;
    std::function<void()> cancel_handler_;
    const std::string token_;

    mutable std::mutex publish_mutex_;
    mutable std::condition_variable published_cv_;
    Published published_;

    std::unique_ptr<StatusWriter> writer_;  // last: its thread calls back into the members above
};

}  // namespace azops
// #include <azops/tracker.hpp> — end

// #include <azops/azops.hpp> — end
