// azops/log_tail.hpp — turning raw output into lines a person (and a JSON file) can hold.
//
// Owns: sanitising one raw output line (ANSI CSI/OSC escapes removed, a `\r` rewrite keeps only the
// text after the last `\r`, invalid UTF-8 replaced by U+FFFD, NUL and other control bytes removed,
// lines over `max_line_bytes` cut with a visible marker), splitting a byte stream into lines without
// unbounded buffering, and the bounded tail of the last N lines.
// Thread-safety: the free functions are pure and reentrant; LineSplitter and LogTail are plain values,
// to be guarded by their owner. Errors: none — every byte sequence gives a valid, bounded UTF-8 line.
#pragma once

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
