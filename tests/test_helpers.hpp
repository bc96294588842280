// Shared helpers for the tests: scratch folders, reading files, a clock the test moves by hand, and an
// event-stream parser.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace azops_test {

// A fresh folder under the system temp dir, removed when the test ends.
class ScratchDir {
public:
    ScratchDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "azops-test-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
}

// For what nothing can signal (a process of someone else's vanishing): checks `done` until it holds
// or `limit` passes.
template <typename Done>
bool eventually(Done done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        ::usleep(5000);
    }
    return true;
}

// Wall-clock time that only moves when the test says so.
class ManualClock {
public:
    explicit ManualClock(std::chrono::system_clock::time_point start =
                             std::chrono::system_clock::time_point{std::chrono::seconds{1796000000}})
        : now_(start.time_since_epoch().count()) {}

    std::chrono::system_clock::time_point now() const {
        return std::chrono::system_clock::time_point{std::chrono::system_clock::duration{now_.load()}};
    }
    void advance(std::chrono::duration<double> d) {
        now_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d).count();
    }
    auto function() {
        return [this] { return now(); };
    }

private:
    std::atomic<std::chrono::system_clock::rep> now_;
};

// One Server-Sent Events item, as a browser parses the stream (WHATWG HTML §9.2, as far as the tests
// need it): lines end at CRLF, LF or a lone CR; a blank line dispatches an event that has data; lines
// starting with ':' are comments, returned so that keep-alives can be checked.
struct SseItem {
    bool is_comment = false;
    std::string comment;
    std::string event = "message";
    std::string id;
    std::string data;
};

// Bytes of the stream body in, items out; what does not yet form a whole line waits for more.
class SseParser {
public:
    void feed(std::string_view bytes) { text_.append(bytes); }

    std::optional<SseItem> next() {
        for (;;) {
            const auto eol = text_.find_first_of("\r\n");
            if (eol == std::string::npos) return std::nullopt;
            if (text_[eol] == '\r' && eol + 1 == text_.size()) return std::nullopt;  // CR LF may be split
            std::string line = text_.substr(0, eol);
            text_.erase(0, eol + ((text_[eol] == '\r' && text_[eol + 1] == '\n') ? 2 : 1));
            if (line.empty()) {
                if (!has_data_) {
                    pending_ = SseItem{};
                    continue;
                }
                SseItem done = pending_;
                pending_ = SseItem{};
                has_data_ = false;
                return done;
            }
            if (line[0] == ':') {
                SseItem c;
                c.is_comment = true;
                c.comment = line.substr(1);
                return c;
            }
            const auto colon = line.find(':');
            const std::string field = line.substr(0, colon);
            std::string value = colon == std::string::npos ? std::string() : line.substr(colon + 1);
            if (!value.empty() && value[0] == ' ') value.erase(0, 1);
            if (field == "data") {
                pending_.data += (has_data_ ? "\n" : "") + value;
                has_data_ = true;
            } else if (field == "event") {
                pending_.event = value;
            } else if (field == "id") {
                pending_.id = value;
            } else if (field == "retry") {
                retries_.push_back(value);
            }
        }
    }

    // Every `retry` value seen, in order.
    const std::vector<std::string>& retries() const noexcept { return retries_; }

private:
    std::string text_;
    SseItem pending_;
    bool has_data_ = false;
    std::vector<std::string> retries_;
};

// Reads a chunked HTTP body's data out of `raw` (complete chunks only), leaving the rest in `raw`.
inline std::string take_chunks(std::string& raw) {
    std::string data;
    for (;;) {
        const auto line_end = raw.find("\r\n");
        if (line_end == std::string::npos) break;
        const std::size_t size = std::stoul(raw.substr(0, line_end), nullptr, 16);
        if (raw.size() < line_end + 2 + size + 2) break;
        data += raw.substr(line_end + 2, size);
        raw.erase(0, line_end + 2 + size + 2);
        if (size == 0) break;
    }
    return data;
}

}  // namespace azops_test
