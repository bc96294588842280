// azops/server.hpp — azops::StatusServer: the dashboard page, the status JSON, Server-Sent Events,
// the Stop request, Prometheus metrics and a liveness probe over HTTP (cpp-httplib).
//
// Owns: StatusFeed, where the served status comes from, with its two sources: TrackerFeed (a Tracker
// in this process) and FileFeed (a status file that another process writes); StatusServer, a
// cpp-httplib 0.11.4 server set up for a dashboard on loopback: a sized worker pool, exclusive bind,
// short timeouts, a Host allow-list against DNS rebinding, no request bodies beyond 4 KiB and none
// chunked or compressed, a token plus same-origin checks on Stop, a cap on live event streams, and a
// stop() that returns within a fraction of a second even with streams and idle sockets open.
// Thread-safety: every member of the feeds and of StatusServer may be called from any thread;
// handlers run on the server's worker threads.
// Errors: StatusServer::start() throws std::runtime_error when it cannot bind (std::logic_error when
// called twice); FileFeed's constructor throws std::system_error when it cannot start its thread.
// After that nothing throws: an unreadable status file is served as "unavailable" with the reason,
// and a failing handler answers a generic 500 without the exception's text.
//
// cpp-httplib must come with its pkg-config flags (`pkg-config --cflags --libs cpp-httplib`): the
// Debian build is a compiled library whose class layouts depend on them.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <azops/detail/dashboard_html.hpp>
#include <azops/detail/text.hpp>
#include <azops/status.hpp>
#include <azops/status_writer.hpp>
#include <azops/tracker.hpp>

namespace azops {

// One look at the status: the document, or why there is none.
struct FeedSnapshot {
    std::uint64_t version = 0;               // changes whenever `json` or `unavailable` changes
    std::string json;                        // the status document, one line of JSON
    std::optional<std::string> unavailable;  // why there is no valid status (file missing, garbage)
};

struct CancelOutcome {
    bool accepted = false;
    std::string message;
};

// Where a StatusServer takes the status from. Implementations must be thread-safe: every HTTP worker
// calls them concurrently.
class StatusFeed {
public:
    virtual ~StatusFeed() = default;
    virtual FeedSnapshot snapshot() = 0;  // cheap
    // Waits until the version differs from `seen`, at most `timeout`; true when it does.
    virtual bool wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout) = 0;
    virtual CancelOutcome request_cancel() = 0;
    virtual std::string token() = 0;  // the run token; "" when no stop can be asked for
    // The status file this status is (or would be) written to, for the "unavailable" answer.
    virtual std::string status_file() { return {}; }
};

namespace detail {

inline std::string absolute_path_text(const std::filesystem::path& p) {
    std::error_code ec;
    const auto abs = std::filesystem::absolute(p, ec);
    return (ec ? p : abs.lexically_normal()).string();
}

// A token goes into the page's HTML; only plain hex of a sane length may.
inline bool is_hex_token(std::string_view token) noexcept {
    if (token.size() < 16 || token.size() > 128) return false;
    return std::all_of(token.begin(), token.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    });
}

}  // namespace detail

// Serves the Tracker of this process. The tracker must outlive the feed.
class TrackerFeed : public StatusFeed {
public:
    explicit TrackerFeed(Tracker& tracker) : tracker_(tracker) {}

    FeedSnapshot snapshot() override {
        Published p = tracker_.published();
        if (p.json.empty()) return {p.version, {}, std::string("the task has not published a status yet")};
        return {p.version, std::move(p.json), std::nullopt};
    }

    bool wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout) override {
        return tracker_.wait_for_publish(seen, timeout);
    }

    CancelOutcome request_cancel() override {
        if (tracker_.request_cancel()) return {true, "stop requested"};
        return {false, "the task cannot be stopped now"};
    }

    std::string token() override { return tracker_.token(); }

    std::string status_file() override { return detail::absolute_path_text(tracker_.status_file()); }

private:
    Tracker& tracker_;
};

struct FileFeedOptions {
    std::chrono::milliseconds poll_interval{100};  // how often the files are stat'ed
    std::size_t max_file_bytes = 16U << 20;        // a larger status file is refused as unavailable
};

// Serves a status file written by another process (a Tracker elsewhere). Its own thread stats the
// file every poll interval and re-reads it only when its inode, size or modification time changed,
// so writers should replace it atomically (as StatusWriter does). It reads the run token from
// `<status file>.token` and asks for a stop by creating `<status file>.cancel` holding that token:
// it cannot signal the writer's child itself.
class FileFeed : public StatusFeed {
public:
    explicit FileFeed(std::filesystem::path status_file, FileFeedOptions options = {})
        : path_(std::move(status_file)),
          options_(options),
          version_(first_version()) {
        refresh();
        poller_ = std::thread([this] { poll(); });
    }

    ~FileFeed() override {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        poller_.join();
    }

    FileFeed(const FileFeed&) = delete;
    FileFeed& operator=(const FileFeed&) = delete;

    FeedSnapshot snapshot() override {
        std::lock_guard<std::mutex> lock(mutex_);
        return {version_, json_, unavailable_};
    }

    bool wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout) override {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return version_ != seen; });
    }

    CancelOutcome request_cancel() override {
        std::string token;
        bool cancellable = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            token = token_;
            cancellable = cancellable_ && !unavailable_;
        }
        if (token.empty()) return {false, "no run token beside the status file; the task cannot be asked to stop"};
        if (!cancellable) return {false, "the task cannot be stopped now"};
        if (auto error = write_cancel_request(token)) return {false, *error};
        return {true, "stop requested"};
    }

    std::string token() override {
        std::lock_guard<std::mutex> lock(mutex_);
        return token_;
    }

    std::string status_file() override { return detail::absolute_path_text(path_); }

    // Looks at the files now instead of at the next poll.
    void refresh() {
        std::lock_guard<std::mutex> serial(refresh_mutex_);
        refresh_status();
        refresh_token();
    }

    const std::filesystem::path& path() const noexcept { return path_; }
    std::filesystem::path token_file() const { return sidecar(".token"); }
    std::filesystem::path cancel_request_file() const { return sidecar(".cancel"); }

private:
    struct FileStamp {
        int error = 0;  // errno of stat, 0 when the file exists
        dev_t device = 0;
        ino_t inode = 0;
        off_t size = 0;
        std::int64_t mtime_ns = 0;

        bool operator==(const FileStamp& o) const noexcept {
            return error == o.error && device == o.device && inode == o.inode && size == o.size &&
                   mtime_ns == o.mtime_ns;
        }
        bool operator!=(const FileStamp& o) const noexcept { return !(*this == o); }
    };

    // Event ids carry the version; starting from the wall clock keeps them increasing across
    // restarts of the server, so a browser's Last-Event-ID from a previous run never matches.
    static std::uint64_t first_version() {
        using namespace std::chrono;
        return static_cast<std::uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
    }

    static FileStamp stamp_of(const std::filesystem::path& p) noexcept {
        FileStamp s;
        struct stat st {};
        if (::stat(p.c_str(), &st) != 0) {
            s.error = errno;
            return s;
        }
        s.device = st.st_dev;
        s.inode = st.st_ino;
        s.size = st.st_size;
        s.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        return s;
    }

    std::filesystem::path sidecar(const char* suffix) const {
        std::filesystem::path p = path_;
        p += suffix;
        return p;
    }

    void poll() {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!stopping_) {
            wake_.wait_for(lock, options_.poll_interval, [this] { return stopping_; });
            if (stopping_) break;
            lock.unlock();
            refresh();
            lock.lock();
        }
    }

    // Reads at most max_file_bytes + 1 bytes, so an oversized file is recognised without reading it all.
    static std::optional<std::string> read_bounded(const std::filesystem::path& p, std::size_t limit, int& error) {
        const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            error = errno;
            return std::nullopt;
        }
        std::string text;
        std::array<char, 16384> buffer;
        while (text.size() <= limit) {
            const ssize_t n = ::read(fd, buffer.data(), buffer.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                error = errno;
                ::close(fd);
                return std::nullopt;
            }
            if (n == 0) break;
            text.append(buffer.data(), static_cast<std::size_t>(n));
        }
        ::close(fd);
        return text;
    }

    struct Reading {
        std::string json;
        std::optional<std::string> unavailable;
        bool cancellable = false;
    };

    Reading read_status() const {
        int error = 0;
        const auto text = read_bounded(path_, options_.max_file_bytes, error);
        if (!text) {
            if (error == ENOENT) return {{}, std::string("the status file does not exist yet"), false};
            return {{}, std::string("cannot read the status file: ") + std::generic_category().message(error), false};
        }
        if (text->size() > options_.max_file_bytes) {
            return {{}, "the status file is larger than " + std::to_string(options_.max_file_bytes) + " bytes", false};
        }
        if (text->find_first_not_of(" \t\r\n") == std::string::npos) {
            return {{}, std::string("the status file is empty"), false};
        }
        nlohmann::json doc;
        try {
            doc = nlohmann::json::parse(*text);
        } catch (const nlohmann::json::parse_error& e) {
            return {{}, "the status file is not valid JSON: " + parse_error_text(e.what()), false};
        }
        if (!doc.is_object()) return {{}, std::string("the status file does not hold a JSON object"), false};
        const auto cancellable = doc.find("cancellable");
        const bool can_cancel = cancellable != doc.end() && cancellable->is_boolean() && cancellable->get<bool>();
        return {to_json_text(doc), std::nullopt, can_cancel};
    }

    // "[json.exception.parse_error.101] parse error at line 1, column 9: ...; last read: '...'" →
    // "parse error at line 1, column 9: ...". What was last read is the file's own text, as long as
    // the file (a 10 MB unterminated string), and would go to every viewer in every answer.
    static std::string parse_error_text(std::string_view what) {
        const auto bracket = what.find("] ");
        if (bracket != std::string_view::npos) what.remove_prefix(bracket + 2);
        return std::string(what.substr(0, what.find("; last read: ")));
    }

    void refresh_status() {
        const FileStamp stamp = stamp_of(path_);
        if (status_seen_ && stamp == status_stamp_) return;
        status_seen_ = true;
        status_stamp_ = stamp;
        Reading reading = read_status();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            cancellable_ = reading.cancellable;
            if (reading.json == json_ && reading.unavailable == unavailable_) return;
            json_ = std::move(reading.json);
            unavailable_ = std::move(reading.unavailable);
            ++version_;
        }
        changed_.notify_all();
    }

    void refresh_token() {
        const FileStamp stamp = stamp_of(token_file());
        if (token_seen_ && stamp == token_stamp_) return;
        token_seen_ = true;
        token_stamp_ = stamp;
        int error = 0;
        std::string token;
        if (const auto text = read_bounded(token_file(), 1024, error)) {
            token = text->substr(0, text->find_first_of("\r\n"));
            if (!detail::is_hex_token(token)) token.clear();
        }
        std::lock_guard<std::mutex> lock(mutex_);
        token_ = std::move(token);
    }

    // The writer takes the request from `<status file>.cancel`; it must appear whole (temp file +
    // rename) and only its owner may read it, since it holds the token.
    std::optional<std::string> write_cancel_request(const std::string& token) const {
        const std::filesystem::path target = cancel_request_file();
        std::string temp = (target.parent_path() / (detail::temp_prefix(target) + "XXXXXX")).string();
        const int fd = ::mkostemp(temp.data(), O_CLOEXEC);  // mode 0600
        if (fd < 0) return detail::errno_text("cannot create a stop request in", target.parent_path(), errno);
        const bool written = detail::write_all(fd, token + "\n");
        const int write_error = errno;
        if (::close(fd) != 0 || !written) {
            ::unlink(temp.c_str());
            return detail::errno_text("cannot write", temp, written ? errno : write_error);
        }
        if (::rename(temp.c_str(), target.c_str()) != 0) {
            const int err = errno;
            ::unlink(temp.c_str());
            return detail::errno_text("cannot create", target, err);
        }
        return std::nullopt;
    }

    const std::filesystem::path path_;
    const FileFeedOptions options_;

    std::mutex refresh_mutex_;  // one refresh at a time; guards the stamps below
    bool status_seen_ = false;
    FileStamp status_stamp_;
    bool token_seen_ = false;
    FileStamp token_stamp_;

    std::mutex mutex_;  // guards everything below
    std::condition_variable changed_;
    std::condition_variable wake_;
    std::uint64_t version_;
    std::string json_;
    std::optional<std::string> unavailable_;
    bool cancellable_ = false;
    std::string token_;
    bool stopping_ = false;

    std::thread poller_;  // last: it uses the members above
};

// What a request did, for an access log. `peer` is the TCP peer, never a header.
struct AccessLogEntry {
    std::string peer;
    int peer_port = -1;
    std::string method;
    std::string path;
    int status = 0;
};

struct ServerOptions {
    std::string host = "127.0.0.1";  // a non-loopback address prints a warning
    int port = 8765;                 // 0: any free port
    bool try_next_ports = true;      // port taken: try the next 20
    // Host header values accepted besides 127.0.0.1:PORT, localhost:PORT and [::1]:PORT (and the
    // bound address); each is accepted as given and with ":PORT" appended.
    std::vector<std::string> extra_allowed_hosts;
    std::size_t max_streams = 64;      // live event streams; more get 503 and poll instead
    std::size_t worker_threads = 96;   // raised to max_streams + 16 when lower
    std::size_t max_body_bytes = 4096;
    std::chrono::milliseconds keep_alive_timeout{1000};  // an idle connection holds a worker this long
    std::size_t keep_alive_max_requests = 100;  // then the connection closes, letting waiting ones in
    std::chrono::milliseconds read_timeout{2000};      // per read
    std::chrono::milliseconds write_timeout{2000};     // per write
    std::chrono::milliseconds request_timeout{5000};   // a request's head and body must arrive within
    std::chrono::milliseconds stream_heartbeat{1000};  // keep-alive comment on a quiet event stream
    std::function<std::chrono::system_clock::time_point()> clock;  // for the status age; default now
    // Called after each response, on the worker thread that served it (so concurrently).
    std::function<void(const AccessLogEntry&)> access_log;
};

namespace detail {

inline bool is_wildcard_host(std::string_view host) noexcept {
    return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

inline bool is_loopback_host(std::string_view host) {
    if (host == "localhost") return true;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string text(host);
    in_addr v4{};
    if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    return ::inet_pton(AF_INET6, text.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// An IPv6 address in brackets, as in a URL or a Host header; anything else unchanged.
inline std::string bracketed(std::string_view host) {
    const bool ipv6 = host.find(':') != std::string_view::npos && host.front() != '[';
    return ipv6 ? "[" + std::string(host) + "]" : std::string(host);
}

inline std::string host_with_port(std::string_view host, int port) {
    return bracketed(host) + ":" + std::to_string(port);
}

// Feeds promise one line, but a line break in an SSE `data:` field would end the event early, so
// any document that has one is compacted here rather than trusted.
inline std::string one_line_json(std::string json) {
    if (json.find_first_of("\r\n") == std::string::npos) return json;
    const auto doc = nlohmann::json::parse(json, nullptr, false);
    return doc.is_discarded() ? to_json_text(nlohmann::json(json)) : to_json_text(doc);
}

inline std::optional<std::uint64_t> parse_decimal(std::string_view text) noexcept {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

inline std::optional<std::chrono::system_clock::time_point> parse_iso8601_utc(const std::string& text) {
    std::tm tm{};
    char zone = 0;
    // The widths bound every field to 4 or 2 digits: no conversion can overflow, which is what
    // cert-err34-c guards against.
    if (std::sscanf(  // NOLINT(cert-err34-c)
            text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec, &zone) != 7 ||
        zone != 'Z') {
        return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const std::time_t t = ::timegm(&tm);
    if (t == static_cast<std::time_t>(-1)) return std::nullopt;
    return std::chrono::system_clock::from_time_t(t);
}

inline std::string error_body(std::string_view message) {
    return to_json_text(nlohmann::json{{"error", std::string(message)}});
}

inline std::string unavailable_body(const std::string& why, const std::string& status_file) {
    return to_json_text(nlohmann::json{{"error", why}, {"status_file", status_file}});
}

inline std::string render_page(std::string_view token) {
    static constexpr std::string_view placeholder = "__AZOPS_TOKEN__";
    std::string page(dashboard_html);
    const auto at = page.find(placeholder);
    if (at != std::string::npos) page.replace(at, placeholder.size(), is_hex_token(token) ? token : std::string_view());
    return page;
}

// 0.11.4 compresses every body given to set_content whose type is text/* or application/json, with
// brotli at its highest quality whenever the client accepts br, as every browser does: about 100 ms
// of CPU and megabytes of encoder memory for the page, kept by the allocator afterwards. On a
// loopback or tunnelled connection compression buys nothing; a body of known length given through
// a content provider is sent as it is.
inline void set_uncompressed(httplib::Response& res, std::string body, const char* content_type) {
    if (body.empty()) {
        res.set_content(body, content_type);
        return;
    }
    const auto shared = std::make_shared<const std::string>(std::move(body));
    res.set_content_provider(shared->size(), content_type,
                             [shared](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                                 return sink.write(shared->data() + offset, length);
                             });
}

inline std::string sse_event(const FeedSnapshot& snap, const std::string& status_file) {
    const bool ok = !snap.unavailable;
    std::string out = "id: " + std::to_string(snap.version) + "\nevent: " + (ok ? "status" : "unavailable") +
                      "\ndata: " + (ok ? one_line_json(snap.json) : unavailable_body(*snap.unavailable, status_file));
    out += "\n\n";
    return out;
}

// Prometheus text exposition 0.0.4: label values escape backslash, double quote and newline.
inline std::string prometheus_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

inline std::string prometheus_number(double v) {
    std::array<char, 64> buf;
    const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    return ec == std::errc() ? std::string(buf.data(), end) : std::string("NaN");
}

class MetricsText {
public:
    void family(const char* name, const char* help) {
        text_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
    }
    void sample(const char* name, const std::string& labels, double value) {
        text_ += name;
        if (!labels.empty()) text_ += "{" + labels + "}";
        text_ += " " + prometheus_number(value) + "\n";
    }
    void gauge(const char* name, const char* help, const std::string& labels, std::optional<double> value) {
        family(name, help);
        if (value) sample(name, labels, *value);
    }
    std::string take() { return std::move(text_); }

private:
    std::string text_;
};

inline std::optional<double> status_number(const nlohmann::json& doc, const char* key) {
    const auto it = doc.find(key);
    if (it == doc.end() || !it->is_number()) return std::nullopt;
    return it->get<double>();
}

inline std::string status_text(const nlohmann::json& doc, const char* key) {
    const auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

inline std::string render_metrics(const FeedSnapshot& snap, std::size_t sse_clients,
                                  std::chrono::system_clock::time_point now) {
    MetricsText m;
    m.gauge("azops_sse_clients", "Live Server-Sent Events streams of this server.", {},
            static_cast<double>(sse_clients));
    const nlohmann::json doc =
        snap.unavailable ? nlohmann::json() : nlohmann::json::parse(snap.json, nullptr, false);
    const bool available = doc.is_object();
    m.gauge("azops_status_available", "1 when a valid status is available, 0 when it is missing or unreadable.", {},
            available ? 1.0 : 0.0);
    if (!available) return m.take();

    const std::string labels = "task=\"" + prometheus_label_value(status_text(doc, "task")) + "\",operation=\"" +
                               prometheus_label_value(status_text(doc, "operation")) + "\",vm_size=\"" +
                               prometheus_label_value(status_text(doc, "vm_size")) + "\"";
    const auto progress = status_number(doc, "progress_pct");
    m.gauge("azops_progress_ratio", "Progress of the whole task, 0 to 1.", labels,
            progress ? std::optional<double>(*progress / 100.0) : std::nullopt);
    m.gauge("azops_eta_seconds", "Estimated time left, in seconds.", labels, status_number(doc, "eta_seconds"));
    m.gauge("azops_cost_usd", "Compute cost accrued so far, in US dollars.", labels, status_number(doc, "cost_usd"));
    m.gauge("azops_projected_cost_usd", "Cost so far plus the cost of the time left, in US dollars.", labels,
            status_number(doc, "projected_cost_usd"));
    m.gauge("azops_hourly_rate_usd", "Hourly compute rate in force, in US dollars.", labels,
            status_number(doc, "hourly_rate_usd"));
    m.gauge("azops_elapsed_seconds", "Time since the task started, in seconds.", labels,
            status_number(doc, "elapsed_seconds"));
    m.gauge("azops_step", "Current step within the operation (0 when unknown).", labels, status_number(doc, "step"));
    m.gauge("azops_total_steps", "Steps of the operation (0 when unknown).", labels, status_number(doc, "total_steps"));
    m.gauge("azops_tasks_succeeded", "Benchmark tasks passed so far.", labels, status_number(doc, "tasks_succeeded"));
    m.gauge("azops_tasks_failed", "Benchmark tasks failed so far.", labels, status_number(doc, "tasks_failed"));

    const std::string state = status_text(doc, "state");
    m.family("azops_state", "1 for the task's current state, 0 for the others.");
    bool known = false;
    for (const char* s : {"idle", "running", "succeeded", "failed", "cancelled"}) {
        known = known || state == s;
        m.sample("azops_state", labels + ",state=\"" + s + "\"", state == s ? 1.0 : 0.0);
    }
    if (!known && !state.empty()) m.sample("azops_state", labels + ",state=\"" + prometheus_label_value(state) + "\"", 1.0);

    // The bill does not stop with the task: a VM left allocated afterwards costs its rate until it is
    // deallocated, which is what a team watching many VMs most needs an alert on.
    const std::string vm_state = status_text(doc, "vm_state");
    const auto assumed = doc.find("billing_assumed");
    const bool billing_assumed = assumed != doc.end() && assumed->is_boolean() && assumed->get<bool>();
    std::optional<double> billed;
    if (!vm_state.empty()) {
        billed = is_billed(parse_vm_state(vm_state)) ? 1.0 : 0.0;
    } else if (billing_assumed) {
        billed = 1.0;
    }
    m.gauge("azops_vm_billed",
            "1 while the VM is allocated and billed (or its state is unknown), 0 once it is deallocated.", labels,
            billed);
    m.gauge("azops_stalled_seconds", "How long the task has been stuck (0 when it is not).", labels,
            status_number(doc, "stalled_seconds").value_or(0.0));
    const auto updated = parse_iso8601_utc(status_text(doc, "updated_at"));
    m.gauge("azops_status_age_seconds", "Seconds since the status was last updated.", labels,
            updated ? std::optional<double>(std::chrono::duration<double>(now - *updated).count()) : std::nullopt);
    return m.take();
}

inline bool wait_for_fd(int fd, short events, int timeout_ms) noexcept {
    pollfd p{fd, events, 0};
    for (;;) {
        const int n = ::poll(&p, 1, std::max(0, timeout_ms));
        if (n < 0 && errno == EINTR) continue;
        return n > 0;
    }
}

inline void peer_text(const sockaddr_storage& addr, std::string& ip, int& port) {
    std::array<char, INET6_ADDRSTRLEN> buf{};
    if (addr.ss_family == AF_INET) {
        const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
        ::inet_ntop(AF_INET, &a.sin_addr, buf.data(), buf.size());
        port = ntohs(a.sin_port);
    } else if (addr.ss_family == AF_INET6) {
        const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
        ::inet_ntop(AF_INET6, &a.sin6_addr, buf.data(), buf.size());
        port = ntohs(a.sin6_port);
    }
    ip = buf.data();
}

// The stream a connection's requests are read from: buffered reads, each bounded by the read
// timeout and all of one request by its deadline (one byte every few seconds never holds a worker
// for long), writes bounded by the write timeout and never raising SIGPIPE.
class ConnectionStream final : public httplib::Stream {
public:
    ConnectionStream(int fd, std::chrono::milliseconds read_timeout, std::chrono::milliseconds write_timeout)
        : fd_(fd), read_timeout_(read_timeout), write_timeout_(write_timeout) {}

    void set_request_deadline(std::chrono::steady_clock::time_point deadline) noexcept { deadline_ = deadline; }
    bool has_buffered_input() const noexcept { return begin_ < end_; }

    bool is_readable() const override {
        return has_buffered_input() || wait_for_fd(fd_, POLLIN, read_budget_ms());
    }
    bool is_writable() const override {
        return wait_for_fd(fd_, POLLOUT, static_cast<int>(write_timeout_.count()));
    }

    ssize_t read(char* ptr, size_t size) override {
        if (!has_buffered_input()) {
            const ssize_t n = fill();
            if (n <= 0) return n;
        }
        const std::size_t count = std::min(size, end_ - begin_);
        std::memcpy(ptr, buffer_.data() + begin_, count);
        begin_ += count;
        return static_cast<ssize_t>(count);
    }

    ssize_t write(const char* ptr, size_t size) override {
        if (!is_writable()) return -1;
        for (;;) {
            const ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            return n;
        }
    }

    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) peer_text(addr, ip, port);
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) peer_text(addr, ip, port);
    }
    socket_t socket() const override { return fd_; }

private:
    int read_budget_ms() const noexcept {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
        return static_cast<int>(std::max<std::int64_t>(0, std::min(left, read_timeout_).count()));
    }

    ssize_t fill() {
        if (read_budget_ms() <= 0 || !wait_for_fd(fd_, POLLIN, read_budget_ms())) return -1;
        for (;;) {
            const ssize_t n = ::recv(fd_, buffer_.data(), buffer_.size(), 0);
            if (n < 0 && errno == EINTR) continue;
            begin_ = 0;
            end_ = n > 0 ? static_cast<std::size_t>(n) : 0;
            return n;
        }
    }

    const int fd_;
    const std::chrono::milliseconds read_timeout_;
    const std::chrono::milliseconds write_timeout_;
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
    std::array<char, 4096> buffer_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

struct ConnectionLimits {
    std::chrono::milliseconds read_timeout;
    std::chrono::milliseconds write_timeout;
    std::chrono::milliseconds request_timeout;
    std::chrono::milliseconds keep_alive_timeout;
    std::size_t keep_alive_max_requests;
};

// cpp-httplib 0.11.4's Server with its per-connection loop replaced (the virtual
// process_and_close_socket), so that: every open connection is known and stop() can shut them all
// down at once instead of waiting for each keep-alive or slow client; a request must arrive whole
// within its deadline; accepted sockets are close-on-exec and unbuffered (TCP_NODELAY); and a
// handler can have its connection closed after a refused request whose body was never read.
class HardenedHttpServer final : public httplib::Server {
public:
    explicit HardenedHttpServer(ConnectionLimits limits) : limits_(limits) {}

    // From a handler: the connection of this worker ends after the current response.
    void close_current_connection() {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = connections_.find(std::this_thread::get_id());
        if (it != connections_.end()) it->second.close_after_response = true;
    }

    // Wakes every worker blocked on a client; connections accepted later are closed at once.
    void shut_down_connections() {
        std::lock_guard<std::mutex> lock(mutex_);
        shutting_down_ = true;
        for (const auto& entry : connections_) ::shutdown(entry.second.fd, SHUT_RDWR);
    }

    // 0.11.4 listens with a backlog of 5, which a burst of browser connections overflows.
    void widen_backlog(int backlog) noexcept {
        const socket_t sock = svr_sock_;
        if (sock != INVALID_SOCKET) ::listen(sock, backlog);
    }

private:
    struct Connection {
        int fd = -1;
        bool close_after_response = false;
    };

    bool process_and_close_socket(socket_t sock) override {
        const bool admitted = enter(sock);
        bool ok = false;
        if (admitted) {
            ok = serve_connection(sock);
            leave();
        }
        ::shutdown(sock, SHUT_RDWR);
        ::close(sock);
        return ok;
    }

    bool enter(int sock) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (shutting_down_) return false;
        connections_[std::this_thread::get_id()] = Connection{sock, false};
        return true;
    }

    void leave() {
        std::lock_guard<std::mutex> lock(mutex_);
        connections_.erase(std::this_thread::get_id());
    }

    bool should_close() {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = connections_.find(std::this_thread::get_id());
        return shutting_down_ || it == connections_.end() || it->second.close_after_response;
    }

    bool serve_connection(int sock) {
        ::fcntl(sock, F_SETFD, FD_CLOEXEC);
        const int on = 1;
        ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        ConnectionStream stream(sock, limits_.read_timeout, limits_.write_timeout);
        bool ok = true;
        for (std::size_t left = limits_.keep_alive_max_requests; left > 0; --left) {
            if (!stream.has_buffered_input() &&
                !wait_for_fd(sock, POLLIN, static_cast<int>(limits_.keep_alive_timeout.count()))) {
                break;
            }
            if (should_close()) break;
            stream.set_request_deadline(std::chrono::steady_clock::now() + limits_.request_timeout);
            bool client_closed = false;
            try {
                ok = process_request(stream, left == 1, client_closed, nullptr);
            } catch (...) {  // an exception from a streaming provider must not end the process
                ok = false;
            }
            if (!ok || client_closed || should_close()) break;
        }
        return ok;
    }

    const ConnectionLimits limits_;
    std::mutex mutex_;
    std::unordered_map<std::thread::id, Connection> connections_;
    bool shutting_down_ = false;
};

// Every Host-header spelling of the bound address that this machine answers to, for a server bound
// to all interfaces: its interface addresses and its host name.
inline std::vector<std::string> local_host_names() {
    std::vector<std::string> names;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) == 0) {
        for (const ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
            if (it->ifa_addr == nullptr) continue;
            sockaddr_storage addr{};
            const int family = it->ifa_addr->sa_family;
            if (family != AF_INET && family != AF_INET6) continue;
            std::memcpy(&addr, it->ifa_addr, family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
            std::string ip;
            int unused_port = 0;
            peer_text(addr, ip, unused_port);
            if (!ip.empty()) names.push_back(ip);
        }
        ::freeifaddrs(list);
    }
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) == 0 && host[0] != '\0') names.emplace_back(host.data());
    return names;
}

}  // namespace detail

class StatusServer {
public:
    explicit StatusServer(std::shared_ptr<StatusFeed> feed, ServerOptions options = {})
        : feed_(std::move(feed)), options_(std::move(options)) {
        if (!feed_) throw std::invalid_argument("StatusServer needs a status feed");
        if (!options_.clock) options_.clock = [] { return std::chrono::system_clock::now(); };
        status_file_ = feed_->status_file();
        http_ = std::make_unique<detail::HardenedHttpServer>(detail::ConnectionLimits{
            options_.read_timeout, options_.write_timeout, options_.request_timeout, options_.keep_alive_timeout,
            std::max<std::size_t>(1, options_.keep_alive_max_requests)});
        harden();
        add_routes();
    }

    ~StatusServer() { stop(); }

    StatusServer(const StatusServer&) = delete;
    StatusServer& operator=(const StatusServer&) = delete;

    // Binds, starts serving on a thread of its own and returns the port.
    int start() {
        std::lock_guard<std::mutex> lock(lifecycle_mutex_);
        if (started_) throw std::logic_error("StatusServer::start() was called twice");
        const int port = bind();
        http_->widen_backlog(128);
        port_ = port;
        build_allow_lists();
        if (!detail::is_loopback_host(options_.host)) warn_exposed();
        started_ = true;
        listener_ = std::thread([this] { http_->listen_after_bind(); });
        // stop() is a no-op until the listening loop has begun; make sure it has.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!http_->is_running() && std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return port;
    }

    // Ends every stream and connection and returns once the workers are gone (well under a second).
    void stop() {
        std::lock_guard<std::mutex> lock(lifecycle_mutex_);
        if (!started_ || stopped_) return;
        stopped_ = true;
        stopping_ = true;
        http_->stop();
        http_->shut_down_connections();
        listener_.join();
    }

    int port() const noexcept { return port_; }

    // http://127.0.0.1:PORT/ (the address a browser on this machine should open); "" before start().
    std::string url() const {
        if (port_ <= 0) return {};
        const std::string& h = options_.host;
        const std::string shown = h == "::" || h == "[::]" ? "::1" : detail::is_wildcard_host(h) ? "127.0.0.1" : h;
        return "http://" + detail::host_with_port(shown, port_) + "/";
    }

    std::size_t live_streams() const noexcept { return streams_.load(); }

private:
    using HandlerResponse = httplib::Server::HandlerResponse;

    void harden() {
        const std::size_t workers = std::max(options_.worker_threads, options_.max_streams + 16);
        http_->new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
        // 0.11.4 sets SO_REUSEPORT, which lets another process bind the same port and take half of
        // the connections (Stop requests included); SO_REUSEADDR alone keeps the port ours.
        http_->set_socket_options([](socket_t sock) {
            const int yes = 1;
            ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
            ::fcntl(sock, F_SETFD, FD_CLOEXEC);
        });
        const auto whole_seconds = [](std::chrono::milliseconds d) {
            return static_cast<time_t>(std::max<std::int64_t>(1, (d.count() + 999) / 1000));
        };
        http_->set_keep_alive_timeout(whole_seconds(options_.keep_alive_timeout));
        http_->set_keep_alive_max_count(std::max<std::size_t>(1, options_.keep_alive_max_requests));
        http_->set_read_timeout(options_.read_timeout);
        http_->set_write_timeout(options_.write_timeout);
        http_->set_payload_max_length(options_.max_body_bytes);
        http_->set_default_headers({
            {"X-Content-Type-Options", "nosniff"},
            {"Content-Security-Policy",
             "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
             "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
            {"Referrer-Policy", "no-referrer"},
        });
        // Without it, 0.11.4 puts the exception's text in an EXCEPTION_WHAT response header.
        http_->set_exception_handler([](const httplib::Request&, httplib::Response& res, const std::exception_ptr&) {
            res.status = 500;
            res.set_content(detail::error_body("internal error"), "application/json");
        });
        http_->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
            if (!res.body.empty() || res.is_chunked_content_provider_ || res.content_length_ > 0) {
                return HandlerResponse::Unhandled;
            }
            res.set_content(detail::error_body(res.status == 404   ? "not found"
                                               : res.status == 405 ? "method not allowed"
                                                                   : "request refused"),
                            "application/json");
            return HandlerResponse::Handled;
        }));
        http_->set_pre_routing_handler(
            [this](const httplib::Request& req, httplib::Response& res) { return screen(req, res); });
        http_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
            // cpp-httplib answers a malformed request (an over-long line, say) itself and would then
            // read its leftover bytes as the next request: an error answer ends the connection.
            if (res.status >= 400) http_->close_current_connection();
            if (options_.access_log) {
                options_.access_log(AccessLogEntry{req.remote_addr, req.remote_port, req.method, req.path, res.status});
            }
        });
    }

    void add_routes() {
        const auto page = [this](const httplib::Request&, httplib::Response& res) { serve_page(res); };
        http_->Get("/", page);
        http_->Get("/azure_ops\\.html", page);
        http_->Get("/api/azure-ops-status", [this](const httplib::Request&, httplib::Response& res) { serve_status(res); });
        http_->Get("/api/azure-ops-events",
                   [this](const httplib::Request& req, httplib::Response& res) { serve_events(req, res); });
        http_->Post("/api/azure-ops/cancel",
                    [this](const httplib::Request& req, httplib::Response& res) { serve_cancel(req, res); });
        http_->Get("/api/azure-ops/cancel", [](const httplib::Request&, httplib::Response& res) {
            res.status = 405;
            res.set_header("Allow", "POST");
        });
        http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { serve_metrics(res); });
        http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
            res.set_header("Cache-Control", "no-store");
            res.set_content("ok", "text/plain; charset=utf-8");
        });
    }

    int bind() {
        const int first = options_.port;
        if (first < 0 || first > 65535) throw std::runtime_error("invalid port " + std::to_string(first));
        if (first == 0) {
            const int port = http_->bind_to_any_port(options_.host);
            if (port > 0) return port;
        } else {
            const int last = options_.try_next_ports ? std::min(first + 20, 65535) : first;
            for (int port = first; port <= last; ++port) {
                if (http_->bind_to_port(options_.host, port)) return port;
            }
        }
        const std::string where = options_.host + " port " + std::to_string(first);
        throw std::runtime_error(
            "cannot listen on " + where +
            (first != 0 && options_.try_next_ports ? " or the 20 ports after it" : std::string()) +
            ": the port is in use, or the address is not one of this machine's; choose another --port "
            "(0 picks any free port)");
    }

    void build_allow_lists() {
        std::vector<std::string> names = {"127.0.0.1", "localhost", "::1"};
        if (!detail::is_wildcard_host(options_.host)) {
            names.push_back(options_.host);
        } else {
            for (auto& n : detail::local_host_names()) names.push_back(std::move(n));
        }
        for (const auto& name : names) {
            add_allowed_host(detail::host_with_port(name, port_), true);
            if (port_ == 80) add_allowed_host(detail::bracketed(name), true);  // browsers omit the default port
        }
        for (const auto& extra : options_.extra_allowed_hosts) {
            add_allowed_host(extra, false);
            add_allowed_host(extra + ":" + std::to_string(port_), true);
        }
    }

    void add_allowed_host(const std::string& host, bool as_origin) {
        allowed_hosts_.push_back(detail::text::lower_ascii(host));
        if (as_origin) allowed_origins_.push_back("http://" + detail::text::lower_ascii(host));
    }

    void warn_exposed() const {
        std::cerr << "azops: warning: the status server listens on " << options_.host << ":" << port_
                  << ", which other machines may reach; anyone who can connect sees the status (Stop still "
                     "needs the run token)\n";
    }

    static bool listed(const std::vector<std::string>& list, const std::string& value) {
        const std::string lowered = detail::text::lower_ascii(value);
        return std::find(list.begin(), list.end(), lowered) != list.end();
    }

    // The one value of a header that must appear at most once; nullopt when absent or repeated.
    // Read from the header map itself: get_header_value() returns a C string, which would cut a
    // percent-decoded "%00" and everything after it.
    static std::optional<std::string> single_header(const httplib::Request& req, const char* name) {
        const auto range = req.headers.equal_range(name);
        if (range.first == range.second || std::next(range.first) != range.second) return std::nullopt;
        return range.first->second;
    }

    // The body, if any, is never read; the error status also ends the connection (see the logger).
    static HandlerResponse refuse(httplib::Response& res, int status, std::string_view message) {
        res.status = status;
        res.set_header("Cache-Control", "no-store");
        res.set_content(detail::error_body(message), "application/json");
        return HandlerResponse::Handled;
    }

    // Runs before any body is read. Refuses what this server never needs and what cpp-httplib 0.11.4
    // cannot bound: chunked bodies and compressed bodies ignore the payload limit.
    HandlerResponse screen(const httplib::Request& req, httplib::Response& res) {
        const auto host = single_header(req, "Host");
        if (!host || !listed(allowed_hosts_, *host)) {
            return refuse(res, 403, "this server answers only to its own address (Host header refused)");
        }
        if (req.has_header("Transfer-Encoding")) return refuse(res, 400, "chunked request bodies are not accepted");
        if (req.has_header("Content-Encoding")) return refuse(res, 415, "compressed request bodies are not accepted");
        if (detail::text::lower_ascii(req.get_header_value("Content-Type")).find("multipart/") != std::string::npos) {
            return refuse(res, 415, "multipart request bodies are not accepted");
        }
        if (req.has_header("Content-Length")) {
            const auto text = single_header(req, "Content-Length");
            const auto length = text ? detail::parse_decimal(*text) : std::nullopt;
            if (!length) return refuse(res, 400, "invalid or repeated Content-Length");
            if (*length > options_.max_body_bytes) return refuse(res, 413, "request body too large");
            if (*length > 0 && req.method != "POST") return refuse(res, 400, "this request takes no body");
        } else if (req.method == "POST") {
            // Without a length, 0.11.4 reads a POST body until the client closes the connection.
            return refuse(res, 411, "Content-Length required");
        }
        return HandlerResponse::Unhandled;
    }

    void serve_page(httplib::Response& res) {
        res.set_header("Cache-Control", "no-store");  // the page carries the run token
        detail::set_uncompressed(res, detail::render_page(feed_->token()), "text/html; charset=utf-8");
    }

    void serve_status(httplib::Response& res) {
        const FeedSnapshot snap = feed_->snapshot();
        res.set_header("Cache-Control", "no-store");
        if (snap.unavailable) {
            res.status = 503;
            detail::set_uncompressed(res, detail::unavailable_body(*snap.unavailable, status_file_), "application/json");
        } else {
            detail::set_uncompressed(res, snap.json, "application/json");
        }
    }

    void serve_metrics(httplib::Response& res) {
        res.set_header("Cache-Control", "no-store");
        detail::set_uncompressed(res, detail::render_metrics(feed_->snapshot(), streams_.load(), options_.clock()),
                                 "text/plain; version=0.0.4; charset=utf-8");
    }

    void serve_cancel(const httplib::Request& req, httplib::Response& res) {
        res.set_header("Cache-Control", "no-store");
        const auto answer = [&res](int status, bool ok, std::string_view message) {
            res.status = status;
            res.set_content(to_json_text(nlohmann::json{{"ok", ok}, {"message", std::string(message)}}),
                            "application/json");
        };
        if (req.has_header("Origin")) {
            const auto origin = single_header(req, "Origin");
            if (!origin || !listed(allowed_origins_, *origin)) return answer(403, false, "cross-origin request refused");
        }
        if (req.has_header("Sec-Fetch-Site")) {
            const auto site = single_header(req, "Sec-Fetch-Site");
            const std::string value = site ? detail::text::lower_ascii(*site) : std::string();
            if (value != "same-origin" && value != "none") {
                return answer(403, false, "cross-site request refused");
            }
        }
        const auto presented = single_header(req, "X-Azops-Token");
        if (!presented || presented->empty()) return answer(403, false, "the run token is missing");
        const std::string expected = feed_->token();
        if (expected.empty()) return answer(409, false, "this server has no run token: the task cannot be stopped from here");
        if (!detail::constant_time_equal(*presented, expected)) return answer(403, false, "wrong run token");
        const CancelOutcome outcome = feed_->request_cancel();
        answer(outcome.accepted ? 202 : 409, outcome.accepted, outcome.message);
    }

    struct EventStream {
        std::optional<std::uint64_t> last_sent;  // Last-Event-ID at first
        bool greeted = false;
        std::chrono::steady_clock::time_point next_heartbeat;
    };

    bool reserve_stream() noexcept {
        std::size_t live = streams_.load();
        do {
            if (live >= options_.max_streams) return false;
        } while (!streams_.compare_exchange_weak(live, live + 1));
        return true;
    }

    void serve_events(const httplib::Request& req, httplib::Response& res) {
        if (stopping_ || !reserve_stream()) {
            res.status = 503;
            res.set_header("Retry-After", "2");
            res.set_header("Cache-Control", "no-store");
            res.set_content(detail::error_body("too many live event streams; poll /api/azure-ops-status"),
                            "application/json");
            return;
        }
        auto stream = std::make_shared<EventStream>();
        if (const auto last = single_header(req, "Last-Event-ID")) stream->last_sent = detail::parse_decimal(*last);
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Accel-Buffering", "no");
        // Exactly text/event-stream: 0.11.4 compresses every other text/* type, and a compressed
        // event stream stays in the compressor's buffer instead of reaching the browser.
        res.set_chunked_content_provider(
            "text/event-stream",
            [this, stream](std::size_t, httplib::DataSink& sink) { return pump_events(*stream, sink); },
            [this](bool) { streams_.fetch_sub(1); });
    }

    // Called by cpp-httplib in a loop until it returns false. Each call blocks until it has
    // something to write (an event, or a heartbeat once a second) and always writes: 0.11.4 spins on
    // a provider that returns without writing, and only a failed write reveals a client that left.
    bool pump_events(EventStream& stream, httplib::DataSink& sink) {
        using Clock = std::chrono::steady_clock;
        try {
            std::string out;
            if (!stream.greeted) {
                stream.greeted = true;
                out = "retry: 2000\n\n";
            }
            for (;;) {
                if (stopping_) return false;
                const FeedSnapshot snap = feed_->snapshot();
                if (stream.last_sent != snap.version) {
                    out += detail::sse_event(snap, status_file_);
                    stream.last_sent = snap.version;
                    break;
                }
                if (!out.empty()) break;
                const auto now = Clock::now();
                if (now >= stream.next_heartbeat) {
                    out = ": keep-alive\n\n";
                    break;
                }
                const auto slice = std::min<Clock::duration>(std::chrono::milliseconds(200), stream.next_heartbeat - now);
                feed_->wait_for_change(snap.version, std::chrono::duration_cast<std::chrono::milliseconds>(slice) +
                                                         std::chrono::milliseconds(1));
            }
            stream.next_heartbeat = Clock::now() + options_.stream_heartbeat;
            return sink.write(out.data(), out.size());
        } catch (...) {
            return false;
        }
    }

    const std::shared_ptr<StatusFeed> feed_;
    ServerOptions options_;
    std::string status_file_;
    std::unique_ptr<detail::HardenedHttpServer> http_;
    std::vector<std::string> allowed_hosts_;    // lower case; written once before the listener starts
    std::vector<std::string> allowed_origins_;  // lower case
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> streams_{0};
    int port_ = -1;

    std::mutex lifecycle_mutex_;
    bool started_ = false;
    bool stopped_ = false;
    std::thread listener_;
};

}  // namespace azops
