// libFuzzer target: azops::sanitize_line, sanitize_line_into and LineSplitter on arbitrary bytes.
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
//           -Iinclude tests/fuzz/fuzz_sanitize_line.cpp -o /tmp/fuzz_sanitize_line
//   mkdir -p /tmp/sanitize_corpus
//   /tmp/fuzz_sanitize_line -dict=tests/fuzz/docker.dict -max_len=20000 -len_control=0 -max_total_time=30
//           /tmp/sanitize_corpus tests/fuzz/corpus/docker
//
// Traps when a sanitised line is not what log_tail.hpp promises: valid UTF-8, no escapes or control
// bytes but tabs, bounded, stable when sanitised again; and when splitting a stream in chunks gives
// other lines than splitting it whole (beyond keeping only the head of an over-long line).
#include <azops/log_tail.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

void expect(bool promise_kept) {
    if (!promise_kept) __builtin_trap();
}

bool is_valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t need = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80) need = 0;
        else if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) { need = 2; lo = 0xA0; }
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
        else if (c == 0xED) { need = 2; hi = 0x9F; }
        else if (c == 0xF0) { need = 3; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        else if (c == 0xF4) { need = 3; hi = 0x8F; }
        else return false;
        if (i + need >= s.size()) return false;
        for (std::size_t k = 1; k <= need; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return false;
        }
        i += need + 1;
    }
    return true;
}

bool has_control_bytes(std::string_view s) {
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\t') || c == 0x7F) return true;
    }
    return false;
}

void check_line(std::string_view raw) {
    std::string scratch;
    const std::string_view clean = azops::sanitize_line_into(raw, scratch);
    expect(is_valid_utf8(clean));
    expect(!has_control_bytes(clean));
    // The text is bounded; only the cut marker (" …[cut N bytes]") may follow it.
    expect(clean.size() <= azops::max_line_bytes + 40);
    expect(azops::sanitize_line(raw) == clean);
    if (clean.data() == raw.data()) expect(clean == raw);
    if (clean.size() <= azops::max_line_bytes) {
        std::string again_scratch;
        const std::string_view again = azops::sanitize_line_into(clean, again_scratch);
        expect(again == clean);
    }
}

// The lines of `input` fed in chunks of `chunk` bytes, each as raw head and count of bytes cut.
std::vector<std::pair<std::string, std::size_t>> split(std::string_view input, std::size_t chunk, std::size_t max_buffered) {
    std::vector<std::pair<std::string, std::size_t>> lines;
    azops::LineSplitter splitter(max_buffered);
    const auto on_line = [&](std::string_view line, std::size_t cut) { lines.emplace_back(line, cut); };
    for (std::size_t at = 0; at < input.size(); at += chunk) splitter.feed(input.substr(at, chunk), on_line);
    splitter.finish(on_line);
    return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    check_line(input);  // the whole input as one line: newlines inside are control bytes to remove
    const std::size_t max_buffered = 256;  // small, so that fuzz inputs reach the over-long path
    const auto whole = split(input, input.size() + 1, max_buffered);
    for (const auto& [line, cut] : whole) {
        check_line(line);
        expect(line.find('\n') == std::string::npos);
        expect(line.size() <= max_buffered);
    }
    // What a terminal would show of each line, and what was cut of it, does not depend on how the
    // stream was chunked (the raw bytes may: text a `\r` overwrote is dropped as it comes).
    const std::size_t chunk = size == 0 ? 1 : 1 + data[0] % 17;
    const auto chunked = split(input, chunk, max_buffered);
    expect(chunked.size() == whole.size());
    for (std::size_t i = 0; i < whole.size() && i < chunked.size(); ++i) {
        expect(azops::sanitize_line(chunked[i].first, chunked[i].second) == azops::sanitize_line(whole[i].first, whole[i].second));
    }
    return 0;
}
