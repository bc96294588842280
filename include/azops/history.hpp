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
#pragma once

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

#include <azops/status_writer.hpp>

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
