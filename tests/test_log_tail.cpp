#include <azops/log_tail.hpp>

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using azops::sanitize_line;

TEST_CASE("sanitize_line: plain ASCII comes back unchanged and without a copy") {
    const std::string line = "#7 [ 3/10] RUN apt-get update";
    std::string scratch;
    const auto view = azops::sanitize_line_into(line, scratch);
    CHECK(view == line);
    CHECK(view.data() == line.data());
    CHECK(scratch.empty());
}

// The fast path reads a line eight bytes at a time (the last word overlapping): every length and
// every position of a byte that needs work must still be seen.
TEST_CASE("sanitize_line: any length of printable ASCII is kept as it is; one other byte anywhere is seen") {
    std::string scratch;
    for (std::size_t length = 0; length <= 40; ++length) {
        std::string plain;
        for (std::size_t i = 0; i < length; ++i) plain += static_cast<char>(0x20 + (i * 7) % 95);  // ' ' to '~'
        CHECK(azops::sanitize_line_into(plain, scratch).data() == plain.data());
        for (std::size_t at = 0; at < length; ++at) {
            for (const int byte : {0x00, 0x09, 0x0A, 0x1B, 0x1F, 0x7F, 0x80, 0xC3, 0xFF}) {
                std::string line = plain;
                line[at] = static_cast<char>(byte);
                const auto clean = azops::sanitize_line_into(line, scratch);
                INFO("length " << length << ", byte " << byte << " at " << at);
                CHECK(clean.data() != line.data());
                if (byte == 0x1B) continue;  // an escape takes bytes after it: what is left depends on them
                const std::string kept = byte == 0x09 ? "\t" : byte >= 0x80 ? "\xEF\xBF\xBD" : "";
                CHECK(clean == plain.substr(0, at) + kept + plain.substr(at + 1));
            }
        }
    }
}

TEST_CASE("sanitize_line: long runs of text between escapes, with tabs inside them, are kept whole") {
    const std::string run = "Successfully installed opencv-python-headless-4.9.0.80\tnumpy-1.26.4 torch-2.2.1";
    CHECK(sanitize_line("\x1b[1m\x1b[32m" + run + "\x1b[0m " + run) == run + " " + run);
    CHECK(sanitize_line("abcdefgh\x01ijklmnopqrstuvwx\x7fyz") == "abcdefghijklmnopqrstuvwxyz");
}

TEST_CASE("sanitize_line: ANSI CSI colour and cursor sequences are removed") {
    CHECK(sanitize_line("\x1b[1;31mERROR\x1b[0m: failed") == "ERROR: failed");
    CHECK(sanitize_line("\x1b[2K\x1b[1A => [2/5] RUN make") == " => [2/5] RUN make");
    CHECK(sanitize_line("\x1b[?25lhidden cursor\x1b[?25h") == "hidden cursor");
    CHECK(sanitize_line("huge \x1b[999999999C move") == "huge  move");
}

TEST_CASE("sanitize_line: OSC sequences are removed, terminated by BEL, by ST, or not at all") {
    CHECK(sanitize_line("\x1b]0;window title\x07text") == "text");
    CHECK(sanitize_line("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ end") == "link end");
    CHECK(sanitize_line("before \x1b]0;never terminated") == "before ");
    CHECK(sanitize_line("trailing escape \x1b") == "trailing escape ");
    CHECK(sanitize_line("charset \x1b(Bswitch") == "charset switch");
}

TEST_CASE("sanitize_line: a carriage return keeps only what a terminal shows last") {
    CHECK(sanitize_line("Downloading 10%\rDownloading 55%\rDownloading 100%") == "Downloading 100%");
    CHECK(sanitize_line("windows line ending\r") == "windows line ending");
    CHECK(sanitize_line("progress 3%\rprogress 9%\r\r") == "progress 9%");
    CHECK(sanitize_line("\r") == "");
}

TEST_CASE("sanitize_line: invalid UTF-8 becomes U+FFFD and valid UTF-8 stays") {
    CHECK(sanitize_line("ok \xff\xfe bad") == "ok \xEF\xBF\xBD\xEF\xBF\xBD bad");
    CHECK(sanitize_line("\xe2\x9d\xaf Booting Windows") == "\xe2\x9d\xaf Booting Windows");
    CHECK(sanitize_line("cut \xe2\x82") == "cut \xEF\xBF\xBD");                   // truncated sequence
    CHECK(sanitize_line("overlong \xc0\xaf") == "overlong \xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(sanitize_line("surrogate \xed\xa0\x80") == "surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(sanitize_line("emoji \xf0\x9f\x9a\x80") == "emoji \xf0\x9f\x9a\x80");
}

TEST_CASE("sanitize_line: NUL and other control bytes are removed, tabs stay") {
    CHECK(sanitize_line(std::string("a\0b", 3)) == "ab");
    CHECK(sanitize_line("bell\x07 back\x08 del\x7f") == "bell back del");
    CHECK(sanitize_line("col1\tcol2") == "col1\tcol2");
}

TEST_CASE("sanitize_line: an over-long line is cut with a marker saying how much was cut") {
    const std::string line(10000, 'x');
    const std::string clean = sanitize_line(line);
    CHECK(clean.rfind(std::string(azops::max_line_bytes, 'x'), 0) == 0);
    CHECK(clean.substr(azops::max_line_bytes) == " \xE2\x80\xA6[cut 5904 bytes]");

    // The cut never splits a multi-byte character.
    std::string wide;
    for (int i = 0; i < 3000; ++i) wide += "\xc3\xa9";  // é, 2 bytes each
    const std::string cut = sanitize_line(wide);
    const auto marker = cut.find(" \xE2\x80\xA6[cut ");
    REQUIRE(marker != std::string::npos);
    CHECK(marker == azops::max_line_bytes);
    CHECK(cut.find("[cut 1904 bytes]") != std::string::npos);
}

TEST_CASE("sanitize_line: whatever the bytes, the result dumps as valid JSON") {
    std::string nasty;
    for (int i = 0; i < 256; ++i) nasty += static_cast<char>(i);
    nasty += "\x1b[31m\xf0\x9f\xff\r\x1b]0;t";
    const std::string clean = sanitize_line(nasty);
    const nlohmann::json j = clean;
    CHECK_NOTHROW((void)j.dump());  // strict mode: throws on invalid UTF-8
}

TEST_CASE("LineSplitter: lines across chunk boundaries, CRLF, and the last unterminated line") {
    std::vector<std::string> lines;
    const auto collect = [&](std::string_view l) { lines.emplace_back(l); };
    azops::LineSplitter splitter;
    splitter.feed("first li", collect);
    splitter.feed("ne\nsecond\r\nthi", collect);
    splitter.feed("rd", collect);
    CHECK(lines == std::vector<std::string>{"first line", "second\r"});
    splitter.finish(collect);
    CHECK(lines.back() == "third");
}

TEST_CASE("LineSplitter: a 16 MiB line without a newline is held bounded and marked") {
    std::vector<std::string> lines;
    const auto collect = [&](std::string_view l) { lines.emplace_back(l); };
    azops::LineSplitter splitter(64 * 1024);
    const std::string block(1024 * 1024, 'z');
    for (int i = 0; i < 16; ++i) splitter.feed(block, collect);
    CHECK(lines.empty());
    splitter.feed("\nnext line\n", collect);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].size() < 64 * 1024 + 64);
    CHECK(lines[0].find("[cut " + std::to_string(16 * 1024 * 1024 - 64 * 1024) + " bytes]") != std::string::npos);
    CHECK(lines[1] == "next line");
}

TEST_CASE("LogTail: keeps the last N lines, oldest first") {
    azops::LogTail tail(3);
    CHECK(tail.lines().empty());
    for (int i = 1; i <= 5; ++i) tail.push("line " + std::to_string(i));
    CHECK(tail.lines() == std::vector<std::string>{"line 3", "line 4", "line 5"});
    CHECK(tail.total_lines() == 5);
    CHECK(tail.capacity() == 3);
}

TEST_CASE("LogTail: a slot that held a long line holds a later short one exactly") {
    azops::LogTail tail(2);
    tail.push(std::string(4000, 'x'));
    tail.push("b");
    tail.push("c");
    CHECK(tail.lines() == std::vector<std::string>{"b", "c"});
    tail.push(std::string_view("d\0e", 3));
    CHECK(tail.lines() == std::vector<std::string>{"c", std::string("d\0e", 3)});
    CHECK(tail.total_lines() == 4);
}

TEST_CASE("LineSplitter: the bound and the cut count do not depend on how the stream was chunked") {
    const std::string long_line(100000, 'q');
    const std::string stream = long_line + "\nshort\n";
    std::vector<std::pair<std::string, std::size_t>> whole, bytewise;
    azops::LineSplitter a(1000), b(1000);
    a.feed(stream, [&](std::string_view l, std::size_t cut) { whole.emplace_back(l, cut); });
    for (char c : stream) {
        b.feed(std::string_view(&c, 1), [&](std::string_view l, std::size_t cut) { bytewise.emplace_back(l, cut); });
    }
    REQUIRE(whole.size() == 2);
    CHECK(whole == bytewise);
    CHECK(whole[0].first.size() == 1000);
    CHECK(whole[0].second == 99000);
    CHECK(azops::sanitize_line(whole[0].first, whole[0].second) == std::string(1000, 'q') + " \xE2\x80\xA6[cut 99000 bytes]");
    CHECK(azops::sanitize_line(std::string(5000, 'q'), 95000).find("[cut 95904 bytes]") != std::string::npos);
}

TEST_CASE("sanitize_line: bytes already cut upstream are counted in the marker, even on a short line") {
    CHECK(azops::sanitize_line("head of a long line", 70000) == "head of a long line \xE2\x80\xA6[cut 70000 bytes]");
}

namespace {

// What a LineSplitter hands on, sanitised: ended lines, and the drawings of the unterminated line.
struct SplitRecord {
    std::vector<std::string> lines;
    std::vector<std::string> drawings;

    void feed(azops::LineSplitter& splitter, std::string_view chunk) {
        splitter.feed(
            chunk, [&](std::string_view l, std::size_t cut) { lines.push_back(sanitize_line(l, cut)); },
            [&](std::string_view l, std::size_t cut) { drawings.push_back(sanitize_line(l, cut)); });
    }
};

// `stream` through a LineSplitter bounded at 1000 bytes, in chunks of `chunk` bytes.
SplitRecord split_in_chunks(std::string_view stream, std::size_t chunk) {
    azops::LineSplitter splitter(1000);
    SplitRecord r;
    for (std::size_t at = 0; at < stream.size(); at += chunk) r.feed(splitter, stream.substr(at, chunk));
    return r;
}

}  // namespace

TEST_CASE("LineSplitter: a line redrawn with carriage returns hands on each drawing before it ends") {
    azops::LineSplitter splitter;
    SplitRecord r;
    r.feed(splitter, "download starts\n");
    r.feed(splitter, "\rwin11x64.iso   1%[>     ]");
    r.feed(splitter, "\rwin11x64.iso   2%[>     ]");
    r.feed(splitter, "\rwin11x64.iso   3%[=>    ]\rwin11x64.iso   4%[=>    ]");
    CHECK(r.lines == std::vector<std::string>{"download starts"});
    CHECK(r.drawings ==
          std::vector<std::string>{"win11x64.iso   1%[>     ]", "win11x64.iso   2%[>     ]", "win11x64.iso   4%[=>    ]"});
    r.feed(splitter, "\rwin11x64.iso 100%[======]  in 58s\nnext\n");
    CHECK(r.lines == std::vector<std::string>{"download starts", "win11x64.iso 100%[======]  in 58s", "next"});
    CHECK(r.drawings.size() == 3);  // a chunk that ends the line hands on the line, not a drawing
}

TEST_CASE("LineSplitter: a drawing that ends its chunk with a carriage return is handed on once the next one starts") {
    azops::LineSplitter splitter;
    SplitRecord r;
    r.feed(splitter, "Collecting torch 10%\r");
    CHECK(r.drawings.empty());  // a lone trailing `\r` may be half of a CRLF
    r.feed(splitter, "Collecting torch 20%\r");
    r.feed(splitter, "\n");
    CHECK(r.drawings == std::vector<std::string>{"Collecting torch 20%"});
    CHECK(r.lines == std::vector<std::string>{"Collecting torch 20%"});
}

TEST_CASE("LineSplitter: a plain unterminated line is no drawing, and CRLF endings are no redraws") {
    azops::LineSplitter splitter;
    SplitRecord r;
    r.feed(splitter, "first part of a line, ");
    r.feed(splitter, "second part\r");
    r.feed(splitter, "\nwindows line\r\n");
    CHECK(r.drawings.empty());
    CHECK(r.lines == std::vector<std::string>{"first part of a line, second part", "windows line"});
}

TEST_CASE("LineSplitter: a bar redrawn for hours holds only its last drawing, however it was chunked") {
    std::string stream;
    for (int i = 0; i <= 100000; ++i) stream += "\rpip download " + std::to_string(i) + " of 100000";
    stream += "\n";
    const std::string shown = "pip download 100000 of 100000";
    for (const std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, stream.size()}) {
        CAPTURE(chunk);
        const SplitRecord r = split_in_chunks(stream, chunk);
        CHECK(r.lines == std::vector<std::string>{shown});  // whole: what was overwritten cut nothing
        if (chunk != stream.size()) {
            REQUIRE_FALSE(r.drawings.empty());
            CHECK(r.drawings.back() == shown.substr(0, std::min(shown.size(), r.drawings.back().size())));
        }
    }
}

TEST_CASE("LineSplitter: a redraw after a line too long to keep shows the redrawn text, uncut, however chunked") {
    const std::string stream = std::string(100000, 'x') + "\rdone\n";
    for (const std::size_t chunk : {std::size_t{1}, std::size_t{4096}, stream.size()}) {
        CAPTURE(chunk);
        CHECK(split_in_chunks(stream, chunk).lines == std::vector<std::string>{"done"});
    }
}

TEST_CASE("LogTail: replace_last rewrites the newest line, or pushes into an empty tail; last reads it") {
    azops::LogTail tail(3);
    CHECK(tail.last().empty());
    tail.replace_last("only");
    CHECK(tail.last() == "only");
    CHECK(tail.lines() == std::vector<std::string>{"only"});
    for (int i = 1; i <= 4; ++i) tail.push("line " + std::to_string(i));
    tail.replace_last("line 4, redrawn");
    CHECK(tail.lines() == std::vector<std::string>{"line 2", "line 3", "line 4, redrawn"});
    CHECK(tail.last() == "line 4, redrawn");
    CHECK(tail.total_lines() == 5);
}
