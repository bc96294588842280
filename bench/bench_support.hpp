// bench/bench_support.hpp — what the benchmark programs share: the lines of a captured log held in
// memory, a temporary folder that removes itself, a Tracker set up as setup_waa sets it up for a
// docker build, and this process's resident memory.
//
// Thread-safety: plain values and pure functions. Errors: a log that cannot be read, or a folder
// that cannot be made, throws std::runtime_error with the path and the reason; the programs let it
// end them with that message.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <azops/history.hpp>
#include <azops/tracker.hpp>

namespace azops_bench {

// A log file read once into memory, split into lines (without '\n'), so that a benchmark measures
// what happens to a line and not how it is read.
class LogLines {
public:
    explicit LogLines(const std::filesystem::path& file) {
        std::ifstream in(file, std::ios::binary);
        if (!in) throw std::runtime_error("cannot read " + file.string() + ": " + std::strerror(errno));
        text_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        std::string_view rest(text_);
        while (!rest.empty()) {
            const auto nl = rest.find('\n');
            lines_.push_back(rest.substr(0, nl));
            if (nl == std::string_view::npos) break;
            rest.remove_prefix(nl + 1);
        }
        if (lines_.empty()) throw std::runtime_error(file.string() + " holds no lines");
    }

    LogLines(const LogLines&) = delete;
    LogLines& operator=(const LogLines&) = delete;

    const std::vector<std::string_view>& lines() const noexcept { return lines_; }
    std::size_t bytes() const noexcept { return text_.size(); }

private:
    std::string text_;
    std::vector<std::string_view> lines_;  // views into text_
};

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it when this goes away.
class TempFolder {
public:
    explicit TempFolder(const char* prefix) {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("cannot create " + pattern + ": " + std::strerror(errno));
        }
        path_ = pattern;
    }
    ~TempFolder() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempFolder(const TempFolder&) = delete;
    TempFolder& operator=(const TempFolder&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
};

// A Tracker as in real use: its status file and a history file with three past builds of the
// 21-step image in `folder`, the background writer at its default pace, the VM known, the task
// begun and the docker_build operation entered, so that every logged line goes through the Docker
// parser and the ETA estimator. Past builds make the status carry a history-based ETA.
inline azops::TrackerOptions tracker_options(const std::filesystem::path& folder) {
    const std::filesystem::path history = folder / "azure_ops_history.json";
    for (const double pace : {0.9, 1.0, 1.2}) {
        std::vector<double> steps;
        for (int step = 1; step <= 21; ++step) steps.push_back(pace * (step % 5 == 0 ? 240.0 : 35.0 + step));
        const azops::HistoryFileResult written = azops::History::record_to_file(history, "docker_build", steps, {1});
        if (!written.ok) throw std::runtime_error("cannot write " + history.string() + ": " + written.error);
    }
    azops::TrackerOptions options;
    options.status_file = folder / "azure_ops_status.json";
    options.history_file = history;
    options.planned_operations = {"vm_create", "docker_install", "docker_build", "windows_boot"};
    return options;
}

inline void start_docker_build(azops::Tracker& tracker) {
    tracker.begin("setup-waa");
    tracker.set_vm(azops::VmInfo{"waa-vm", "Standard_D8ds_v5", "eastus", "20.115.42.7", "running", {}});
    tracker.operation("docker_build");
}

// VmRSS of this process in KiB, from /proc/self/status; none where that file does not say.
inline std::optional<long> resident_kib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    }
    return std::nullopt;
}

}  // namespace azops_bench
