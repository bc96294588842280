// Shared helpers for the tests: scratch folders, reading files, a clock the test moves by hand.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

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

}  // namespace azops_test
