// azops/detail/text.hpp — the small text tests the parsers, the cost model, the az runner and the
// server share.
//
// Owns: prefix, suffix and substring tests, digit tests, trimming (blanks, or all ASCII white space)
// and ASCII lower-casing. Byte-wise and locale-free on purpose: what they read is machine output, VM
// size names and HTTP headers, never prose in the user's language.
// Thread-safety: pure functions. Errors: none.
#pragma once

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
