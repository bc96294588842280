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
#pragma once

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
