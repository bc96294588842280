// Tests of azops/server.hpp: a real StatusServer on loopback (ephemeral ports), driven by raw
// sockets so that every header, byte and timing is the test's own choice.
#include <azops/server.hpp>

#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

const std::string kToken = "0123456789abcdef0123456789abcdef0123456789abcdef";

std::string sample_status(int step, const std::vector<std::string>& log_tail = {}, const std::string& state = "running") {
    nlohmann::json j = {
        {"schema", "azops.status/1"},
        {"task", "setup-waa"},
        {"operation", "docker_build"},
        {"phase", "building"},
        {"step", step},
        {"total_steps", 14},
        {"progress_pct", 100.0 * step / 14},
        {"log_tail", log_tail},
        {"started_at", "2026-11-29T03:00:00Z"},
        {"updated_at", "2026-11-29T03:10:00Z"},
        {"elapsed_seconds", 600.0},
        {"eta_seconds", 840.0},
        {"cost_usd", 0.064},
        {"projected_cost_usd", 0.1536},
        {"hourly_rate_usd", 0.384},
        {"vm_size", "Standard_D8ds_v5"},
        {"vm_state", "running"},
        {"state", state},
        {"cancellable", true},
        {"stalled_seconds", nullptr},
    };
    return azops::to_json_text(j);
}

// A status source the test drives by hand.
class TestFeed : public azops::StatusFeed {
public:
    explicit TestFeed(std::string json = sample_status(3)) : json_(std::move(json)) {}

    void publish(std::string json) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            json_ = std::move(json);
            unavailable_.reset();
            ++version_;
        }
        cv_.notify_all();
    }

    void make_unavailable(std::string why) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            unavailable_ = std::move(why);
            ++version_;
        }
        cv_.notify_all();
    }

    std::uint64_t version() {
        std::lock_guard<std::mutex> lock(mutex_);
        return version_;
    }

    azops::FeedSnapshot snapshot() override {
        if (throw_on_snapshot) throw std::runtime_error("secret detail: /home/op/.azure/msal_token_cache.json");
        std::lock_guard<std::mutex> lock(mutex_);
        return {version_, json_, unavailable_};
    }

    bool wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout) override {
        std::unique_lock<std::mutex> lock(mutex_);
        return cv_.wait_for(lock, timeout, [&] { return version_ != seen; });
    }

    azops::CancelOutcome request_cancel() override {
        ++cancel_calls;
        std::lock_guard<std::mutex> lock(mutex_);
        return outcome;
    }

    std::string token() override {
        std::lock_guard<std::mutex> lock(mutex_);
        return token_;
    }

    void set_token(std::string t) {
        std::lock_guard<std::mutex> lock(mutex_);
        token_ = std::move(t);
    }

    void set_outcome(azops::CancelOutcome o) {
        std::lock_guard<std::mutex> lock(mutex_);
        outcome = std::move(o);
    }

    std::string status_file() override { return "/srv/ops/benchmark_results/azure_ops_status.json"; }

    std::atomic<int> cancel_calls{0};
    std::atomic<bool> throw_on_snapshot{false};

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::uint64_t version_ = 1;
    std::string json_;
    std::optional<std::string> unavailable_;
    std::string token_ = kToken;
    azops::CancelOutcome outcome{true, "stop requested"};
};

azops::ServerOptions test_options() {
    azops::ServerOptions o;
    o.port = 0;
    return o;
}

// Waits, in short steps, for something the server does on its own time; false after `timeout`.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 3000ms) {
    const auto give_up = SteadyClock::now() + timeout;
    while (!condition()) {
        if (SteadyClock::now() >= give_up) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

double ms_since(SteadyClock::time_point start) {
    return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

int connect_to(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// One TCP connection to the server.
class Conn {
public:
    explicit Conn(int port) : fd_(connect_to(port)) {}
    ~Conn() { close(); }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    bool connected() const { return fd_ >= 0; }

    bool send(std::string_view data) {
        while (!data.empty()) {
            const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    // Appends what arrives before `deadline`; returns false on end of stream or error.
    bool read_some(std::string& out, SteadyClock::time_point deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
        pollfd p{fd_, POLLIN, 0};
        if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return true;
        char buf[8192];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return false;
        out.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    // Everything until the server closes the connection; nullopt when it does not within `timeout`.
    std::optional<std::string> read_to_end(std::chrono::milliseconds timeout = 3000ms) {
        std::string out;
        const auto deadline = SteadyClock::now() + timeout;
        while (SteadyClock::now() < deadline) {
            if (!read_some(out, deadline)) return out;
        }
        return std::nullopt;
    }

    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

struct HttpReply {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
    std::string body;
    std::string raw;

    std::size_t count(const std::string& name) const {
        return static_cast<std::size_t>(std::count_if(headers.begin(), headers.end(),
                                                      [&](const auto& h) { return h.first == lower(name); }));
    }
    std::string header(const std::string& name) const {
        for (const auto& h : headers) {
            if (h.first == lower(name)) return h.second;
        }
        return {};
    }
};

std::optional<HttpReply> parse_head(const std::string& raw, std::size_t& body_start) {
    const auto end = raw.find("\r\n\r\n");
    if (end == std::string::npos) return std::nullopt;
    HttpReply reply;
    std::istringstream lines(raw.substr(0, end));
    std::string line;
    std::getline(lines, line);
    if (line.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
    reply.status = std::stoi(line.substr(9, 3));
    while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        reply.headers.emplace_back(lower(line.substr(0, colon)), value);
    }
    body_start = end + 4;
    return reply;
}

std::optional<HttpReply> parse_reply(const std::string& raw) {
    std::size_t body_start = 0;
    auto reply = parse_head(raw, body_start);
    if (!reply) return std::nullopt;
    std::string rest = raw.substr(body_start);
    if (lower(reply->header("Transfer-Encoding")) == "chunked") {
        reply->body += azops_test::take_chunks(rest);
    } else {
        reply->body = rest;
    }
    reply->raw = raw;
    return reply;
}

// Sends one request and reads the whole answer (the requests ask for Connection: close).
HttpReply round_trip(int port, const std::string& request, std::chrono::milliseconds timeout = 3000ms) {
    Conn conn(port);
    REQUIRE(conn.connected());
    REQUIRE(conn.send(request));
    const auto raw = conn.read_to_end(timeout);
    REQUIRE_MESSAGE(raw.has_value(), "no complete answer within the timeout");
    const auto reply = parse_reply(*raw);
    REQUIRE_MESSAGE(reply.has_value(), "unparsable answer: " << *raw);
    return *reply;
}

std::string host_of(int port) { return "127.0.0.1:" + std::to_string(port); }

std::string get_request(int port, const std::string& path, const std::string& extra = {}) {
    return "GET " + path + " HTTP/1.1\r\nHost: " + host_of(port) + "\r\n" + extra + "Connection: close\r\n\r\n";
}

HttpReply get(int port, const std::string& path, const std::string& extra = {}) {
    return round_trip(port, get_request(port, path, extra));
}

std::string cancel_request(int port, const std::string& extra) {
    return "POST /api/azure-ops/cancel HTTP/1.1\r\nHost: " + host_of(port) + "\r\n" + extra +
           "Content-Length: 0\r\nConnection: close\r\n\r\n";
}

void check_security_headers(const HttpReply& r) {
    CHECK(r.header("X-Content-Type-Options") == "nosniff");
    CHECK(r.header("Content-Security-Policy") ==
          "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
          "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    CHECK(r.header("Referrer-Policy") == "no-referrer");
    for (const auto& h : r.headers) CHECK_MESSAGE(h.first.rfind("access-control-", 0) != 0, h.first);
}

using azops_test::SseItem;

// An event stream read over a raw socket; items come out as a browser would parse them.
class SseClient {
public:
    explicit SseClient(int port, const std::string& extra_headers = {}) : conn_(port) {
        REQUIRE(conn_.connected());
        REQUIRE(conn_.send("GET /api/azure-ops-events HTTP/1.1\r\nHost: " + host_of(port) +
                           "\r\nAccept: text/event-stream\r\n" + extra_headers + "\r\n"));
    }

    std::optional<HttpReply> head(std::chrono::milliseconds timeout = 2000ms) {
        const auto deadline = SteadyClock::now() + timeout;
        while (!head_) {
            std::size_t body_start = 0;
            if (auto parsed = parse_head(raw_, body_start)) {
                head_ = parsed;
                raw_.erase(0, body_start);
                break;
            }
            if (SteadyClock::now() >= deadline || !conn_.read_some(raw_, deadline)) return std::nullopt;
        }
        return head_;
    }

    // The next event or comment; nullopt when none arrives in time or the stream ended.
    std::optional<SseItem> next(std::chrono::milliseconds timeout = 2000ms) {
        const auto deadline = SteadyClock::now() + timeout;
        if (!head(timeout)) return std::nullopt;
        for (;;) {
            std::string body;
            body += azops_test::take_chunks(raw_);
            parser_.feed(body);
            if (auto item = parser_.next()) return item;
            if (SteadyClock::now() >= deadline) return std::nullopt;
            if (!conn_.read_some(raw_, deadline)) {
                ended_ = true;
                return std::nullopt;
            }
        }
    }

    // The next dispatched event, skipping comments.
    std::optional<SseItem> next_event(std::chrono::milliseconds timeout = 2000ms) {
        const auto deadline = SteadyClock::now() + timeout;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
            if (left.count() <= 0) return std::nullopt;
            auto item = next(left);
            if (!item || !item->is_comment) return item;
        }
    }

    // True when the server closes the stream within `timeout`.
    bool ends_within(std::chrono::milliseconds timeout) {
        const auto deadline = SteadyClock::now() + timeout;
        while (!ended_ && SteadyClock::now() < deadline) {
            if (!conn_.read_some(raw_, deadline)) ended_ = true;
        }
        return ended_;
    }

    const std::vector<std::string>& retries() const { return parser_.retries(); }
    void close() { conn_.close(); }

private:
    Conn conn_;
    std::string raw_;
    std::optional<HttpReply> head_;
    azops_test::SseParser parser_;
    bool ended_ = false;
};

// A client that sends its request one byte at a time, forever (until told to stop).
class SlowClients {
public:
    SlowClients(int port, int count, std::chrono::milliseconds interval) {
        for (int i = 0; i < count; ++i) {
            conns_.push_back(std::make_unique<Conn>(port));
            conns_.back()->send("GET /healthz HTTP/1.1\r\nHost: " + host_of(port) + "\r\n");
        }
        dripper_ = std::thread([this, interval] {
            std::unique_lock<std::mutex> lock(mutex_);
            while (!cv_.wait_for(lock, interval, [this] { return done_; })) {
                for (auto& c : conns_) c->send("X");
            }
        });
    }
    ~SlowClients() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            done_ = true;
        }
        cv_.notify_all();
        dripper_.join();
    }

private:
    std::vector<std::unique_ptr<Conn>> conns_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread dripper_;
};

struct Served {
    std::shared_ptr<TestFeed> feed = std::make_shared<TestFeed>();
    std::unique_ptr<azops::StatusServer> server;
    int port = 0;

    explicit Served(azops::ServerOptions options = test_options()) {
        server = std::make_unique<azops::StatusServer>(feed, std::move(options));
        port = server->start();
    }
};

}  // namespace

TEST_SUITE("server") {

TEST_CASE("start binds an ephemeral loopback port and url() names it") {
    Served s;
    CHECK(s.port > 0);
    CHECK(s.server->url() == "http://127.0.0.1:" + std::to_string(s.port) + "/");
    CHECK_THROWS_AS(s.server->start(), std::logic_error);
}

TEST_CASE("the page carries the run token, as html, never cached, with the security headers") {
    Served s;
    for (const char* path : {"/", "/azure_ops.html"}) {
        const auto r = get(s.port, path);
        CHECK(r.status == 200);
        CHECK(r.header("Content-Type") == "text/html; charset=utf-8");
        CHECK(r.header("Cache-Control") == "no-store");
        CHECK(r.body.find("<meta name=\"azops-token\" content=\"" + kToken + "\">") != std::string::npos);
        CHECK(r.body.find("__AZOPS_TOKEN__") == std::string::npos);
        check_security_headers(r);
    }
}

TEST_CASE("the page carries no token when the feed has none or an unsafe one") {
    Served s;
    for (const std::string& token : std::vector<std::string>{"", "\"><script>alert(1)</script><x y=\"0123456789"}) {
        s.feed->set_token(token);
        const auto r = get(s.port, "/");
        CHECK(r.status == 200);
        CHECK(r.body.find("<meta name=\"azops-token\" content=\"\">") != std::string::npos);
        CHECK(r.body.find("<script>alert") == std::string::npos);
    }
}

TEST_CASE("a browser's Accept-Encoding gzip, br gets the page, the status and the metrics uncompressed") {
    // Compressing them would cost ~100 ms of CPU and megabytes of encoder memory per page load
    // (brotli at its highest quality) and buy nothing on loopback.
    Served s;
    for (const char* path : {"/", "/api/azure-ops-status", "/metrics"}) {
        const auto r = get(s.port, path, "Accept-Encoding: gzip, deflate, br\r\n");
        CHECK_MESSAGE(r.status == 200, path);
        CHECK_MESSAGE(r.count("Content-Encoding") == 0, path);
        CHECK_MESSAGE(r.header("Content-Length") == std::to_string(r.body.size()), path);
    }
    CHECK(get(s.port, "/api/azure-ops-status", "Accept-Encoding: br\r\n").body == sample_status(3));
    CHECK(get(s.port, "/", "Accept-Encoding: br\r\n").body.find("<meta name=\"azops-token\"") != std::string::npos);
    s.feed->make_unavailable("the status file does not exist yet");
    const auto r = get(s.port, "/api/azure-ops-status", "Accept-Encoding: br\r\n");
    CHECK(r.status == 503);
    CHECK(r.count("Content-Encoding") == 0);
    CHECK(nlohmann::json::parse(r.body)["error"] == "the status file does not exist yet");
}

TEST_CASE("the status endpoint answers the feed's JSON, not cached — 503 with the reason when unavailable") {
    Served s;
    auto r = get(s.port, "/api/azure-ops-status");
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type") == "application/json");
    CHECK(r.header("Cache-Control") == "no-store");
    CHECK(r.body == sample_status(3));
    check_security_headers(r);

    s.feed->make_unavailable("the status file is not valid JSON: parse error at line 1, column 12");
    r = get(s.port, "/api/azure-ops-status");
    CHECK(r.status == 503);
    const auto body = nlohmann::json::parse(r.body);
    CHECK(body["error"] == "the status file is not valid JSON: parse error at line 1, column 12");
    CHECK(body["status_file"] == "/srv/ops/benchmark_results/azure_ops_status.json");
}

TEST_CASE("healthz answers ok — any other path, traversal included, is 404 with the security headers") {
    Served s;
    const auto ok = get(s.port, "/healthz");
    CHECK(ok.status == 200);
    CHECK(ok.body == "ok");
    for (const char* path : {"/web/azure_ops.html", "/azure_opsXhtml", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                             "/..%2f..%2fetc%2fpasswd", "/api/azure-ops-status/../../../etc/passwd", "/favicon.ico",
                             "/api/", "//etc/passwd"}) {
        const auto r = get(s.port, path);
        CHECK_MESSAGE(r.status == 404, path);
        CHECK(r.body.find("root:") == std::string::npos);
        check_security_headers(r);
    }
    CHECK(round_trip(s.port, "DELETE /api/azure-ops-status HTTP/1.1\r\nHost: " + host_of(s.port) +
                               "\r\nConnection: close\r\n\r\n")
              .status == 404);
}

TEST_CASE("metrics: Prometheus text with HELP and TYPE, escaped labels, state gauges and the status age") {
    const auto now = std::chrono::system_clock::from_time_t(1796526612);
    azops::ServerOptions options = test_options();
    options.clock = [now] { return now; };
    Served s(options);
    nlohmann::json doc = nlohmann::json::parse(sample_status(7));
    doc["task"] = "run \"waa\" \\ nightly\nsecond line";
    doc["updated_at"] = azops::iso8601_utc(now - 12s);
    doc["stalled_seconds"] = 420.5;
    s.feed->publish(azops::to_json_text(doc));

    const auto r = get(s.port, "/metrics");
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
    const std::string labels =
        R"(task="run \"waa\" \\ nightly\nsecond line",operation="docker_build",vm_size="Standard_D8ds_v5")";
    for (const std::string& line : std::vector<std::string>{
             "# HELP azops_progress_ratio Progress of the whole task, 0 to 1.",
             "# TYPE azops_progress_ratio gauge",
             "azops_progress_ratio{" + labels + "} 0.5",
             "azops_eta_seconds{" + labels + "} 840",
             "azops_cost_usd{" + labels + "} 0.064",
             "azops_projected_cost_usd{" + labels + "} 0.1536",
             "azops_hourly_rate_usd{" + labels + "} 0.384",
             "azops_elapsed_seconds{" + labels + "} 600",
             "azops_step{" + labels + "} 7",
             "azops_total_steps{" + labels + "} 14",
             "# TYPE azops_state gauge",
             "azops_state{" + labels + ",state=\"running\"} 1",
             "azops_state{" + labels + ",state=\"failed\"} 0",
             "azops_stalled_seconds{" + labels + "} 420.5",
             "# TYPE azops_vm_billed gauge",
             "azops_status_age_seconds{" + labels + "} 12",
             "# TYPE azops_sse_clients gauge",
             "azops_sse_clients 0",
             "azops_status_available 1",
         }) {
        CHECK_MESSAGE(r.body.find(line + "\n") != std::string::npos, line);
    }
    // Each sample line is one line: no raw newline from a label leaked into the exposition.
    std::istringstream lines(r.body);
    std::string line;
    while (std::getline(lines, line)) {
        CHECK_MESSAGE((line.rfind("# HELP azops_", 0) == 0 || line.rfind("# TYPE azops_", 0) == 0 ||
                       line.rfind("azops_", 0) == 0),
                      line);
    }
}

TEST_CASE("metrics: a null ETA has no sample, an unknown state gets its own, and an unavailable status only says so") {
    Served s;
    nlohmann::json doc = nlohmann::json::parse(sample_status(2));
    doc["eta_seconds"] = nullptr;
    doc["state"] = "paused";
    s.feed->publish(azops::to_json_text(doc));
    auto body = get(s.port, "/metrics").body;
    CHECK(body.find("# TYPE azops_eta_seconds gauge\n") != std::string::npos);
    CHECK(body.find("azops_eta_seconds{") == std::string::npos);
    CHECK(body.find(",state=\"paused\"} 1\n") != std::string::npos);
    CHECK(body.find(",state=\"running\"} 0\n") != std::string::npos);

    s.feed->make_unavailable("the status file does not exist yet");
    body = get(s.port, "/metrics").body;
    CHECK(body.find("azops_status_available 0\n") != std::string::npos);
    CHECK(body.find("azops_progress_ratio") == std::string::npos);
}

TEST_CASE("metrics: azops_vm_billed follows the billing rule, and has no sample without a VM state or an assumption") {
    Served s;
    nlohmann::json doc = nlohmann::json::parse(sample_status(2));
    const auto billed_sample = [&s, &doc] {
        s.feed->publish(azops::to_json_text(doc));
        const std::string text = get(s.port, "/metrics").body;
        const auto at = text.find("\nazops_vm_billed{");
        return at == std::string::npos ? std::string("none") : text.substr(text.find("} ", at) + 2, 1);
    };
    for (const auto& state_and_billed : std::vector<std::pair<std::string, std::string>>{
             {"running", "1"}, {"stopped", "1"}, {"unknown", "1"}, {"deallocating", "0"}, {"deallocated", "0"}}) {
        doc["vm_state"] = state_and_billed.first;
        CHECK_MESSAGE(billed_sample() == state_and_billed.second, state_and_billed.first);
    }
    doc["vm_state"] = nullptr;
    doc["billing_assumed"] = true;
    CHECK(billed_sample() == "1");
    doc["billing_assumed"] = false;
    CHECK(billed_sample() == "none");
}

TEST_CASE("events: exact content type, retry first, the current status at once, then one event per change in order") {
    Served s;
    SseClient sse(s.port);
    const auto head = sse.head();
    REQUIRE(head);
    CHECK(head->status == 200);
    CHECK(head->header("Content-Type") == "text/event-stream");
    CHECK(head->header("Cache-Control") == "no-cache");
    CHECK(head->header("X-Accel-Buffering") == "no");
    CHECK(head->count("Content-Encoding") == 0);
    check_security_headers(*head);

    auto first = sse.next_event();
    REQUIRE(first);
    CHECK(sse.retries() == std::vector<std::string>{"2000"});
    CHECK(first->event == "status");
    CHECK(first->id == "1");
    CHECK(first->data == sample_status(3));

    std::uint64_t previous = 1;
    for (int step = 4; step <= 8; ++step) {
        s.feed->publish(sample_status(step));
        const auto e = sse.next_event();
        REQUIRE(e);
        CHECK(e->event == "status");
        CHECK(nlohmann::json::parse(e->data)["step"] == step);
        const std::uint64_t id = std::stoull(e->id);
        CHECK(id > previous);
        previous = id;
    }
    CHECK(s.server->live_streams() == 1);
}

TEST_CASE("events: Last-Event-ID equal to the current id resends nothing until the next change") {
    Served s;
    s.feed->publish(sample_status(5));  // version 2
    SseClient same(s.port, "Last-Event-ID: 2\r\n");
    SseClient older(s.port, "Last-Event-ID: 1\r\n");
    SseClient garbage(s.port, "Last-Event-ID: 2x\r\n");

    const auto resent = older.next_event();
    REQUIRE(resent);
    CHECK(resent->id == "2");
    REQUIRE(garbage.next_event());

    CHECK_FALSE(same.next_event(400ms));
    s.feed->publish(sample_status(6));
    const auto next = same.next_event();
    REQUIRE(next);
    CHECK(next->id == "3");
    CHECK(nlohmann::json::parse(next->data)["step"] == 6);
}

TEST_CASE("events: a quiet stream gets a keep-alive comment every heartbeat") {
    azops::ServerOptions options = test_options();
    options.stream_heartbeat = 100ms;
    Served s(options);
    SseClient sse(s.port);
    REQUIRE(sse.next_event());
    for (int i = 0; i < 3; ++i) {
        const auto item = sse.next(1000ms);
        REQUIRE(item);
        CHECK(item->is_comment);
        CHECK(item->comment == " keep-alive");
    }
}

TEST_CASE("events: the default heartbeat is one second") {
    Served s;
    SseClient sse(s.port);
    REQUIRE(sse.next_event());
    const auto start = SteadyClock::now();
    const auto item = sse.next(2500ms);
    REQUIRE(item);
    CHECK(item->is_comment);
    CHECK(ms_since(start) < 1600);
}

TEST_CASE("events: a browser's Accept-Encoding gzip, br gets an uncompressed stream whose first event arrives") {
    Served s;
    SseClient sse(s.port, "Accept-Encoding: gzip, deflate, br\r\n");
    const auto start = SteadyClock::now();
    const auto head = sse.head();
    REQUIRE(head);
    CHECK(head->count("Content-Encoding") == 0);
    CHECK(head->header("Content-Type") == "text/event-stream");
    REQUIRE(sse.next_event(1000ms));
    CHECK(ms_since(start) < 1000);
}

TEST_CASE("events: log text with CR, LF, NUL and SSE field lines stays inside one event") {
    Served s;
    SseClient sse(s.port);
    REQUIRE(sse.next_event());
    const std::vector<std::string> hostile = {
        "Step 3/14 : RUN apt-get update\r\nevent: stop\r\ndata: {}",
        "progress 40%\rprogress 41%\r",
        "\nevent: stop\n\nid: 9\nretry: 1\n\n",
        "id: 99",
        "retry: 1",
        ": not a comment",
        std::string("nul\0byte", 8),
        "data: {\"state\":\"cancelled\"}",
    };
    s.feed->publish(sample_status(4, hostile));
    const auto e = sse.next_event();
    REQUIRE(e);
    CHECK(e->event == "status");
    CHECK(e->id == "2");
    CHECK(e->data.find('\n') == std::string::npos);
    const auto j = nlohmann::json::parse(e->data);
    CHECK(j["log_tail"] == nlohmann::json(hostile));
    CHECK(j["state"] == "running");

    s.feed->publish(sample_status(5));
    const auto after = sse.next_event();
    REQUIRE(after);
    CHECK(after->id == "3");  // no id or event injected in between
    CHECK(sse.retries() == std::vector<std::string>{"2000"});
}

TEST_CASE("events: a feed whose JSON spans lines is sent as one data line") {
    Served s;
    SseClient sse(s.port);
    REQUIRE(sse.next_event());
    s.feed->publish(nlohmann::json::parse(sample_status(9)).dump(2));
    const auto e = sse.next_event();
    REQUIRE(e);
    CHECK(e->data == sample_status(9));
}

TEST_CASE("events: an unavailable status is an 'unavailable' event with the reason and the file") {
    Served s;
    SseClient sse(s.port);
    REQUIRE(sse.next_event());
    s.feed->make_unavailable("the status file does not exist yet");
    const auto e = sse.next_event();
    REQUIRE(e);
    CHECK(e->event == "unavailable");
    const auto j = nlohmann::json::parse(e->data);
    CHECK(j["error"] == "the status file does not exist yet");
    CHECK(j["status_file"] == "/srv/ops/benchmark_results/azure_ops_status.json");
    s.feed->publish(sample_status(4));
    const auto back = sse.next_event();
    REQUIRE(back);
    CHECK(back->event == "status");
}

TEST_CASE("events: beyond the stream cap the answer is 503 with Retry-After while polling still works") {
    azops::ServerOptions options = test_options();
    options.max_streams = 3;
    options.stream_heartbeat = 100ms;
    Served s(options);
    std::vector<std::unique_ptr<SseClient>> streams;
    for (int i = 0; i < 3; ++i) {
        streams.push_back(std::make_unique<SseClient>(s.port));
        REQUIRE(streams.back()->next_event());
    }
    CHECK(s.server->live_streams() == 3);
    for (int i = 0; i < 4; ++i) {
        const auto start = SteadyClock::now();
        const auto r = get(s.port, "/api/azure-ops-events");
        CHECK(r.status == 503);
        CHECK(r.header("Retry-After") == "2");
        CHECK(ms_since(start) < 1000);
    }
    CHECK(get(s.port, "/api/azure-ops-status").status == 200);
    CHECK(get(s.port, "/metrics").body.find("azops_sse_clients 3\n") != std::string::npos);

    streams.pop_back();  // a client leaves; its slot comes back once a write to it fails
    CHECK(eventually([&] { return s.server->live_streams() == 2; }));
    SseClient again(s.port);
    const auto head = again.head();
    REQUIRE(head);
    CHECK(head->status == 200);
}

TEST_CASE("events: clients that disconnect are found by the heartbeat and release their slots") {
    azops::ServerOptions options = test_options();
    options.stream_heartbeat = 100ms;
    Served s(options);
    for (int round = 0; round < 20; ++round) {
        SseClient sse(s.port);
        REQUIRE(sse.next_event());
    }
    CHECK(eventually([&] { return s.server->live_streams() == 0; }, 2000ms));
    CHECK(get(s.port, "/healthz").status == 200);
}

TEST_CASE("idle sockets and slowloris clients do not starve status polls or a new event stream") {
    Served s;
    std::vector<std::unique_ptr<Conn>> idle;
    for (int i = 0; i < 16; ++i) {
        idle.push_back(std::make_unique<Conn>(s.port));
        REQUIRE(idle.back()->connected());
    }
    SlowClients slow(s.port, 8, 100ms);

    const auto stream_start = SteadyClock::now();
    SseClient sse(s.port);
    REQUIRE(sse.next_event(1000ms));
    const double first_event_ms = ms_since(stream_start);

    double worst_poll_ms = 0;
    for (int i = 0; i < 10; ++i) {
        const auto start = SteadyClock::now();
        const auto r = get(s.port, "/api/azure-ops-status");
        worst_poll_ms = std::max(worst_poll_ms, ms_since(start));
        CHECK(r.status == 200);
    }
    s.feed->publish(sample_status(10));
    const auto update_start = SteadyClock::now();
    REQUIRE(sse.next_event(1000ms));
    const double update_ms = ms_since(update_start);

    CHECK(first_event_ms < 500);
    CHECK(worst_poll_ms < 500);
    CHECK(update_ms < 500);
}

TEST_CASE("a slowloris request is cut off at the request deadline") {
    azops::ServerOptions options = test_options();
    options.request_timeout = 300ms;
    Served s(options);
    Conn conn(s.port);
    REQUIRE(conn.send("GET /healthz HTTP/1.1\r\nHost: " + host_of(s.port) + "\r\n"));
    const auto start = SteadyClock::now();
    std::string got;
    bool open = true;
    while (open && ms_since(start) < 3000) {
        conn.send("X");  // one byte every 50 ms: each read is quick, the whole request is not
        open = conn.read_some(got, SteadyClock::now() + 50ms);
    }
    CHECK_FALSE(open);
    CHECK(ms_since(start) < 1500);
}

TEST_CASE("the Host header must name this server: DNS-rebinding names, malformed and missing values are refused") {
    Served s;
    const std::string p = std::to_string(s.port);
    const std::vector<std::string> refused = {
        "evil.example:" + p,
        "attacker.example",
        "localhost.evil.example:" + p,
        "127.0.0.1.nip.io:" + p,
        "127.0.0.1",
        "localhost",
        "127.0.0.1:" + std::to_string(s.port + 1),
        "127.0.0.1:" + p + "0",
        "127.0.0.1:" + p + ".evil.example",
        "",
        "[",
        "[::1",
        "]:" + p,
        "127.0.0.1%00:" + p,
        "127.0.0.1:" + p + "%00",
        "127.0.0.1:" + p + "%0d%0aX-Injected: 1",
        std::string(5000, 'a') + ":" + p,
        "0.0.0.0:" + p,
    };
    for (const auto& host : refused) {
        const auto r = round_trip(s.port, "GET /api/azure-ops-status HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
        CHECK_MESSAGE(r.status == 403, host.substr(0, 60));
        CHECK(r.body.find("\"operation\"") == std::string::npos);
        CHECK(r.count("X-Injected") == 0);
    }
    const auto missing = round_trip(s.port, "GET /api/azure-ops-status HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK(missing.status == 403);
    const auto twice = round_trip(s.port, "GET /api/azure-ops-status HTTP/1.1\r\nHost: 127.0.0.1:" + p +
                                            "\r\nHost: evil.example:" + p + "\r\nConnection: close\r\n\r\n");
    CHECK(twice.status == 403);
    const auto huge_start = SteadyClock::now();
    const auto huge = round_trip(s.port, "GET /healthz HTTP/1.1\r\nHost: " + std::string(20000, 'h') + "\r\nConnection: close\r\n\r\n");
    CHECK(huge.status == 400);  // cpp-httplib's own line limit; the connection then ends at once
    CHECK(ms_since(huge_start) < 500);

    for (const std::string& host : std::vector<std::string>{"127.0.0.1:" + p, "localhost:" + p, "[::1]:" + p, "LocalHost:" + p}) {
        const auto r = round_trip(s.port, "GET /api/azure-ops-status HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
        CHECK_MESSAGE(r.status == 200, host);
    }
}

TEST_CASE("configured extra host names are allowed, alone and with the port") {
    azops::ServerOptions options = test_options();
    options.extra_allowed_hosts = {"ops-dashboard.internal"};
    Served s(options);
    const std::string p = std::to_string(s.port);
    for (const std::string& host : std::vector<std::string>{"ops-dashboard.internal", "ops-dashboard.internal:" + p}) {
        CHECK(round_trip(s.port, "GET /healthz HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n").status == 200);
    }
    CHECK(round_trip(s.port, "GET /healthz HTTP/1.1\r\nHost: ops-dashboard.internal.evil:" + p + "\r\nConnection: close\r\n\r\n")
              .status == 403);
}

TEST_CASE("stop requests: token, origin and fetch-site checks refuse every cross-site form") {
    Served s;
    const std::string p = std::to_string(s.port);
    const std::string good = "X-Azops-Token: " + kToken + "\r\n";
    const std::vector<std::pair<std::string, std::string>> refused = {
        {"no token", ""},
        {"empty token", "X-Azops-Token: \r\n"},
        {"wrong token", "X-Azops-Token: " + std::string(48, 'f') + "\r\n"},
        {"short token", "X-Azops-Token: " + kToken.substr(0, 47) + "\r\n"},
        {"token twice", good + good},
        {"cross origin", good + "Origin: https://evil.example\r\n"},
        {"null origin", good + "Origin: null\r\n"},
        {"other port", good + "Origin: http://127.0.0.1:" + std::to_string(s.port + 1) + "\r\n"},
        {"https scheme", good + "Origin: https://127.0.0.1:" + p + "\r\n"},
        {"rebinding origin", good + "Origin: http://evil.example:" + p + "\r\n"},
        {"cross-site fetch", good + "Sec-Fetch-Site: cross-site\r\n"},
        {"same-site fetch", good + "Sec-Fetch-Site: same-site\r\n"},
        {"form post", "Origin: https://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\n"},
        {"text/plain post", "Content-Type: text/plain\r\nSec-Fetch-Site: cross-site\r\n"},
    };
    for (const auto& attempt : refused) {
        const auto r = round_trip(s.port, cancel_request(s.port, attempt.second));
        CHECK_MESSAGE(r.status == 403, attempt.first);
        CHECK(nlohmann::json::parse(r.body)["ok"] == false);
    }
    const auto query = round_trip(s.port, "POST /api/azure-ops/cancel?token=" + kToken + " HTTP/1.1\r\nHost: " +
                                            host_of(s.port) + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    CHECK(query.status == 403);
    const auto as_get = get(s.port, "/api/azure-ops/cancel", good);
    CHECK(as_get.status == 405);
    CHECK(as_get.header("Allow") == "POST");
    CHECK(s.feed->cancel_calls == 0);
}

TEST_CASE("stop requests: the page's own request is accepted — a task that cannot stop answers 409") {
    Served s;
    const std::string p = std::to_string(s.port);
    const std::string good = "X-Azops-Token: " + kToken + "\r\n";
    for (const std::string& extra : std::vector<std::string>{good + "Origin: http://127.0.0.1:" + p + "\r\nSec-Fetch-Site: same-origin\r\n",
                                    good + "Origin: http://localhost:" + p + "\r\n",
                                    good + "Sec-Fetch-Site: none\r\n", good}) {
        const auto r = round_trip(s.port, cancel_request(s.port, extra));
        CHECK(r.status == 202);
        CHECK(r.header("Cache-Control") == "no-store");
        CHECK(nlohmann::json::parse(r.body) == nlohmann::json{{"ok", true}, {"message", "stop requested"}});
    }
    CHECK(s.feed->cancel_calls == 4);

    s.feed->set_outcome({false, "the task cannot be stopped now"});
    const auto refused = round_trip(s.port, cancel_request(s.port, good));
    CHECK(refused.status == 409);
    CHECK(nlohmann::json::parse(refused.body) ==
          nlohmann::json{{"ok", false}, {"message", "the task cannot be stopped now"}});

    s.feed->set_token("");
    const auto tokenless = round_trip(s.port, cancel_request(s.port, good));
    CHECK(tokenless.status == 409);
    CHECK(s.feed->cancel_calls == 5);
}

TEST_CASE("the peer address comes from the socket, never from REMOTE_ADDR or X-Forwarded-For headers") {
    azops::ServerOptions options = test_options();
    std::mutex mutex;
    std::vector<azops::AccessLogEntry> log;
    options.access_log = [&](const azops::AccessLogEntry& e) {
        std::lock_guard<std::mutex> lock(mutex);
        log.push_back(e);
    };
    Served s(options);
    const auto r = get(s.port, "/healthz", "REMOTE_ADDR: 6.6.6.6\r\nREMOTE_PORT: 1\r\nX-Forwarded-For: 6.6.6.6\r\n");
    CHECK(r.status == 200);
    REQUIRE(eventually([&] {
        std::lock_guard<std::mutex> lock(mutex);
        return !log.empty();
    }));
    std::lock_guard<std::mutex> lock(mutex);
    CHECK(log[0].peer == "127.0.0.1");
    CHECK(log[0].peer_port > 1);
    CHECK(log[0].method == "GET");
    CHECK(log[0].path == "/healthz");
    CHECK(log[0].status == 200);
}

TEST_CASE("the port is ours alone: a second server fails or moves on, and SO_REUSEPORT cannot share it") {
    Served first;
    azops::ServerOptions fixed = test_options();
    fixed.port = first.port;
    fixed.try_next_ports = false;
    azops::StatusServer second(std::make_shared<TestFeed>(), fixed);
    try {
        second.start();
        FAIL("a second server bound a port already in use");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("port " + std::to_string(first.port)) != std::string::npos);
    }

    azops::ServerOptions next = fixed;
    next.try_next_ports = true;
    auto other_feed = std::make_shared<TestFeed>(sample_status(13));
    azops::StatusServer third(other_feed, next);
    const int moved = third.start();
    CHECK(moved > first.port);
    CHECK(moved <= first.port + 20);

    const int thief = ::socket(AF_INET, SOCK_STREAM, 0);
    const int yes = 1;
    ::setsockopt(thief, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    ::setsockopt(thief, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof yes);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(first.port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    const int bound = ::bind(thief, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    const int err = errno;
    ::close(thief);
    CHECK(bound == -1);
    CHECK(err == EADDRINUSE);

    for (int i = 0; i < 20; ++i) CHECK(get(first.port, "/api/azure-ops-status").body == sample_status(3));
}

TEST_CASE("an invalid port is a clear error") {
    azops::ServerOptions options = test_options();
    options.port = 70000;
    azops::StatusServer server(std::make_shared<TestFeed>(), options);
    CHECK_THROWS_AS(server.start(), std::runtime_error);
}

TEST_CASE("request bodies: chunked, compressed, multipart, oversized and unmeasured ones are refused before reading") {
    Served s;
    const std::string host = "Host: " + host_of(s.port) + "\r\n";
    const std::string token = "X-Azops-Token: " + kToken + "\r\n";
    struct Case {
        const char* why;
        std::string request;
        int status;
    };
    const std::vector<Case> cases = {
        {"chunked", "POST /api/azure-ops/cancel HTTP/1.1\r\n" + host + token + "Transfer-Encoding: chunked\r\n\r\n100000\r\nAAAA", 400},
        {"gzip", "POST /api/azure-ops/cancel HTTP/1.1\r\n" + host + token + "Content-Encoding: gzip\r\nContent-Length: 100\r\n\r\n", 415},
        {"brotli", "POST /api/azure-ops/cancel HTTP/1.1\r\n" + host + token + "Content-Encoding: br\r\nContent-Length: 100\r\n\r\n", 415},
        {"10 MB", "POST /api/azure-ops/cancel HTTP/1.1\r\n" + host + token + "Content-Length: 10000000\r\n\r\n", 413},
        {"4097 bytes", "POST /api/azure-ops/cancel HTTP/1.1\r\n" + host + token + "Content-Length: 4097\r\n\r\n", 413},
        {"multipart", "POST /api/azure-ops/cancel HTTP/1.1\r\n" + host + token +
                          "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 100\r\n\r\n", 415},
        {"no length", "POST /api/azure-ops/cancel HTTP/1.1\r\n" + host + token + "\r\n", 411},
        {"bad length", "POST /api/azure-ops/cancel HTTP/1.1\r\n" + host + token + "Content-Length: 12abc\r\n\r\n", 400},
        {"negative length", "POST /api/azure-ops/cancel HTTP/1.1\r\n" + host + token + "Content-Length: -1\r\n\r\n", 400},
        {"two lengths", "POST /api/azure-ops/cancel HTTP/1.1\r\n" + host + token + "Content-Length: 0\r\nContent-Length: 5\r\n\r\n", 400},
        {"GET with a body", "GET /healthz HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello", 400},
    };
    for (const auto& c : cases) {
        const auto start = SteadyClock::now();
        // The bodies are never sent: an answer (and a closed connection) proves nothing waited for them.
        const auto r = round_trip(s.port, c.request, 1500ms);
        CHECK_MESSAGE(r.status == c.status, c.why);
        CHECK_MESSAGE(ms_since(start) < 1000, c.why);
    }
    CHECK(s.feed->cancel_calls == 0);
}

TEST_CASE("a refused request's unread body is never parsed as a second request") {
    Served s;
    const std::string smuggled = "GET /api/azure-ops-status HTTP/1.1\r\nHost: " + host_of(s.port) + "\r\n\r\n";
    Conn conn(s.port);
    REQUIRE(conn.send("POST /api/azure-ops/cancel HTTP/1.1\r\nHost: " + host_of(s.port) +
                      "\r\nContent-Encoding: gzip\r\nContent-Length: " + std::to_string(smuggled.size()) + "\r\n\r\n" +
                      smuggled));
    const auto raw = conn.read_to_end();
    REQUIRE(raw);
    CHECK(raw->rfind("HTTP/1.1 415", 0) == 0);
    CHECK(raw->find("HTTP/1.1", 1) == std::string::npos);
}

TEST_CASE("keep-alive: requests on one connection are answered in turn") {
    Served s;
    Conn conn(s.port);
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: " + host_of(s.port) + "\r\n\r\n";
    REQUIRE(conn.send(request + request + request));
    std::string got;
    const auto deadline = SteadyClock::now() + 2000ms;
    std::size_t answers = 0;
    while (answers < 3 && SteadyClock::now() < deadline && conn.read_some(got, deadline)) {
        answers = 0;
        for (auto at = got.find("HTTP/1.1 200"); at != std::string::npos; at = got.find("HTTP/1.1 200", at + 1)) ++answers;
    }
    CHECK(answers == 3);
}

TEST_CASE("keep-alive: a connection closes after keep_alive_max_requests answers, the last saying so") {
    CHECK(azops::ServerOptions{}.keep_alive_max_requests == 100);
    auto options = test_options();
    options.keep_alive_max_requests = 3;
    Served s(options);
    Conn conn(s.port);
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: " + host_of(s.port) + "\r\n\r\n";
    REQUIRE(conn.send(request + request + request + request));
    const auto raw = conn.read_to_end();
    REQUIRE(raw);  // the server closed the connection
    std::vector<std::size_t> answers;
    for (auto at = raw->find("HTTP/1.1 200"); at != std::string::npos; at = raw->find("HTTP/1.1 200", at + 1)) answers.push_back(at);
    REQUIRE(answers.size() == 3);  // the fourth request was not read
    CHECK(lower(raw->substr(answers.back())).find("connection: close") != std::string::npos);
    CHECK(lower(raw->substr(0, answers.back())).find("connection: close") == std::string::npos);
}

TEST_CASE("a throwing handler answers a generic 500 and never leaks the exception text") {
    Served s;
    s.feed->throw_on_snapshot = true;
    for (const char* path : {"/api/azure-ops-status", "/metrics"}) {
        const auto r = get(s.port, path);
        CHECK(r.status == 500);
        CHECK(r.count("EXCEPTION_WHAT") == 0);
        CHECK(r.raw.find("secret") == std::string::npos);
        CHECK(r.raw.find("msal_token_cache") == std::string::npos);
        CHECK(r.body == R"({"error":"internal error"})");
        check_security_headers(r);
    }
    SseClient sse(s.port);
    REQUIRE(sse.head());
    CHECK(sse.ends_within(1000ms));
    CHECK(eventually([&] { return s.server->live_streams() == 0; }));
    s.feed->throw_on_snapshot = false;
    CHECK(get(s.port, "/healthz").status == 200);
}

TEST_CASE("stop() returns quickly with open streams, idle keep-alive sockets and slow clients") {
    auto s = std::make_unique<Served>();
    std::vector<std::unique_ptr<SseClient>> streams;
    for (int i = 0; i < 4; ++i) {
        streams.push_back(std::make_unique<SseClient>(s->port));
        REQUIRE(streams.back()->next_event());
    }
    std::vector<std::unique_ptr<Conn>> kept;
    for (int i = 0; i < 4; ++i) {
        kept.push_back(std::make_unique<Conn>(s->port));
        REQUIRE(kept.back()->send("GET /healthz HTTP/1.1\r\nHost: " + host_of(s->port) + "\r\n\r\n"));
        std::string got;
        REQUIRE(kept.back()->read_some(got, SteadyClock::now() + 1000ms));
        CHECK(got.rfind("HTTP/1.1 200", 0) == 0);
    }
    SlowClients slow(s->port, 4, 200ms);

    const auto start = SteadyClock::now();
    s->server->stop();
    const double stop_ms = ms_since(start);
    CHECK(stop_ms < 1500);
    for (auto& sse : streams) CHECK(sse->ends_within(1000ms));
    const int port = s->port;
    s.reset();
    CHECK(connect_to(port) == -1);
}

TEST_CASE("binding all interfaces warns on stderr and still refuses foreign Host names") {
    std::ostringstream captured;
    auto* previous = std::cerr.rdbuf(captured.rdbuf());
    azops::ServerOptions options = test_options();
    options.host = "0.0.0.0";
    std::optional<Served> s;
    try {
        s.emplace(options);
    } catch (...) {
        std::cerr.rdbuf(previous);
        throw;
    }
    std::cerr.rdbuf(previous);
    CHECK(captured.str().find("warning") != std::string::npos);
    CHECK(captured.str().find("0.0.0.0") != std::string::npos);
    CHECK(s->server->url() == "http://127.0.0.1:" + std::to_string(s->port) + "/");
    const std::string p = std::to_string(s->port);
    CHECK(round_trip(s->port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:" + p + "\r\nConnection: close\r\n\r\n").status == 200);
    CHECK(round_trip(s->port, "GET /healthz HTTP/1.1\r\nHost: evil.example:" + p + "\r\nConnection: close\r\n\r\n").status == 403);
    char name[256] = {};
    REQUIRE(::gethostname(name, sizeof name - 1) == 0);
    CHECK(round_trip(s->port, "GET /healthz HTTP/1.1\r\nHost: " + std::string(name) + ":" + p + "\r\nConnection: close\r\n\r\n")
              .status == 200);
}

TEST_CASE("loopback binding prints no warning") {
    std::ostringstream captured;
    auto* previous = std::cerr.rdbuf(captured.rdbuf());
    {
        Served s;
    }
    std::cerr.rdbuf(previous);
    CHECK(captured.str().empty());
}

}  // TEST_SUITE("server")

TEST_SUITE("file feed") {

namespace {

azops::FileFeedOptions manual_polling() {
    azops::FileFeedOptions o;
    o.poll_interval = std::chrono::hours(1);  // the test calls refresh() itself
    return o;
}

void write_atomically(const std::filesystem::path& p, const std::string& text) {
    REQUIRE(azops::write_file_atomically(p, text).ok);
}

}  // namespace

TEST_CASE("a missing, empty, truncated or garbage file is unavailable with the reason — a valid one comes back") {
    azops_test::ScratchDir dir;
    const auto path = dir / "azure_ops_status.json";
    azops::FileFeed feed(path, manual_polling());

    auto snap = feed.snapshot();
    REQUIRE(snap.unavailable);
    CHECK(*snap.unavailable == "the status file does not exist yet");
    CHECK(feed.status_file() == path.string());
    auto version = snap.version;

    const std::string valid = sample_status(6);
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"", "the status file is empty"},
        {valid.substr(0, valid.size() / 2), "the status file is not valid JSON: parse error"},
        {"\x7f" "ELF\x02\x01\x01garbage", "the status file is not valid JSON: parse error"},
        {valid + "{\"operation\":\"vm", "the status file is not valid JSON: parse error"},
        {"[1,2,3]", "the status file does not hold a JSON object"},
    };
    for (const auto& sample : bad) {
        const std::string& content = sample.first;
        const std::string& reason = sample.second;
        write_atomically(path, content);
        feed.refresh();
        snap = feed.snapshot();
        REQUIRE_MESSAGE(snap.unavailable, content);
        CHECK_MESSAGE(snap.unavailable->rfind(reason, 0) == 0, *snap.unavailable);
        CHECK(snap.unavailable->find("[json.exception") == std::string::npos);
        CHECK(snap.version > version);
        version = snap.version;

        write_atomically(path, valid);
        feed.refresh();
        snap = feed.snapshot();
        CHECK_FALSE(snap.unavailable);
        CHECK(snap.json == valid);
        CHECK(snap.version > version);
        version = snap.version;
    }

    std::filesystem::remove(path);
    feed.refresh();
    snap = feed.snapshot();
    REQUIRE(snap.unavailable);
    CHECK(*snap.unavailable == "the status file does not exist yet");
}

TEST_CASE("an unchanged file keeps its version — a pretty-printed one is served as one line") {
    azops_test::ScratchDir dir;
    const auto path = dir / "azure_ops_status.json";
    write_atomically(path, nlohmann::json::parse(sample_status(2)).dump(4));
    azops::FileFeed feed(path, manual_polling());
    const auto first = feed.snapshot();
    CHECK_FALSE(first.unavailable);
    CHECK(first.json == sample_status(2));
    feed.refresh();
    CHECK(feed.snapshot().version == first.version);
    CHECK_FALSE(feed.wait_for_change(first.version, 1ms));
}

TEST_CASE("an oversized file is refused without being read whole") {
    azops_test::ScratchDir dir;
    const auto path = dir / "azure_ops_status.json";
    write_atomically(path, "{\"log_tail\":[\"" + std::string(5000, 'x') + "\"]}");
    azops::FileFeedOptions options = manual_polling();
    options.max_file_bytes = 4096;
    azops::FileFeed feed(path, options);
    const auto snap = feed.snapshot();
    REQUIRE(snap.unavailable);
    CHECK(*snap.unavailable == "the status file is larger than 4096 bytes");
}

TEST_CASE("the poller notices a change on its own and wakes waiters") {
    azops_test::ScratchDir dir;
    const auto path = dir / "azure_ops_status.json";
    azops::FileFeedOptions options;
    options.poll_interval = 10ms;
    azops::FileFeed feed(path, options);
    const auto before = feed.snapshot();
    write_atomically(path, sample_status(8));
    CHECK(feed.wait_for_change(before.version, 3000ms));
    CHECK(feed.snapshot().json == sample_status(8));
}

TEST_CASE("cancel writes <status file>.cancel with the token, mode 0600, only when the task can stop") {
    azops_test::ScratchDir dir;
    const auto path = dir / "azure_ops_status.json";
    azops::FileFeed feed(path, manual_polling());

    auto outcome = feed.request_cancel();
    CHECK_FALSE(outcome.accepted);
    CHECK(outcome.message.find("no run token") != std::string::npos);
    CHECK(feed.token().empty());

    REQUIRE(azops::write_file_atomically(feed.token_file(), kToken + "\n", azops::AtomicWriteOptions{false, 0600}).ok);
    write_atomically(path, sample_status(4, {}, "succeeded"));
    {
        nlohmann::json done = nlohmann::json::parse(sample_status(4, {}, "succeeded"));
        done["cancellable"] = false;
        write_atomically(path, azops::to_json_text(done));
    }
    feed.refresh();
    CHECK(feed.token() == kToken);
    outcome = feed.request_cancel();
    CHECK_FALSE(outcome.accepted);
    CHECK(outcome.message == "the task cannot be stopped now");
    CHECK_FALSE(std::filesystem::exists(feed.cancel_request_file()));

    write_atomically(path, sample_status(5));
    feed.refresh();
    outcome = feed.request_cancel();
    CHECK(outcome.accepted);
    CHECK(outcome.message == "stop requested");
    REQUIRE(std::filesystem::exists(feed.cancel_request_file()));
    CHECK(azops_test::read_file(feed.cancel_request_file()) == kToken + "\n");
    struct stat st {};
    REQUIRE(::stat(feed.cancel_request_file().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
        CHECK_MESSAGE(entry.path().filename().string().find(".tmp.") == std::string::npos, entry.path());
    }
}

TEST_CASE("a token file holding anything but a hex token gives no token") {
    azops_test::ScratchDir dir;
    const auto path = dir / "azure_ops_status.json";
    azops::FileFeed feed(path, manual_polling());
    for (const std::string& content : std::vector<std::string>{"\"><script>x</script>\n", "abc\n", ""}) {
        write_atomically(feed.token_file(), content);
        feed.refresh();
        CHECK(feed.token().empty());
    }
}

TEST_CASE("served over HTTP: 503 while the file is missing, the status once it appears, Stop through the .cancel file") {
    azops_test::ScratchDir dir;
    const auto path = dir / "azure_ops_status.json";
    azops::FileFeedOptions feed_options;
    feed_options.poll_interval = 10ms;
    auto feed = std::make_shared<azops::FileFeed>(path, feed_options);
    azops::StatusServer server(feed, test_options());
    const int port = server.start();

    const auto missing = get(port, "/api/azure-ops-status");
    CHECK(missing.status == 503);
    CHECK(nlohmann::json::parse(missing.body) ==
          nlohmann::json{{"error", "the status file does not exist yet"}, {"status_file", path.string()}});

    SseClient sse(port);
    const auto first = sse.next_event();
    REQUIRE(first);
    CHECK(first->event == "unavailable");

    REQUIRE(azops::write_file_atomically(feed->token_file(), kToken + "\n", azops::AtomicWriteOptions{false, 0600}).ok);
    write_atomically(path, sample_status(7));
    const auto arrived = sse.next_event(3000ms);
    REQUIRE(arrived);
    CHECK(arrived->event == "status");
    CHECK(arrived->data == sample_status(7));
    CHECK(std::stoull(arrived->id) > std::stoull(first->id));
    REQUIRE(eventually([&] { return feed->token() == kToken; }));
    CHECK(get(port, "/").body.find("content=\"" + kToken + "\"") != std::string::npos);

    const auto stop = round_trip(port, cancel_request(port, "X-Azops-Token: " + kToken + "\r\n"));
    CHECK(stop.status == 202);
    CHECK(azops_test::read_file(feed->cancel_request_file()) == kToken + "\n");
}

}  // TEST_SUITE("file feed")

TEST_SUITE("tracker feed") {

TEST_CASE("a Tracker in this process is served live, and Stop reaches its cancel handler") {
    azops_test::ScratchDir dir;
    azops::TrackerOptions tracker_options;
    tracker_options.status_file = dir / "azure_ops_status.json";
    tracker_options.min_write_interval = 10ms;
    azops::Tracker tracker(tracker_options);
    std::atomic<int> stops{0};
    tracker.begin("setup-waa");
    tracker.operation("docker_build", 14);
    tracker.flush();

    azops::StatusServer server(std::make_shared<azops::TrackerFeed>(tracker), test_options());
    const int port = server.start();
    const auto status = get(port, "/api/azure-ops-status");
    CHECK(status.status == 200);
    CHECK(nlohmann::json::parse(status.body)["task"] == "setup-waa");
    CHECK(get(port, "/").body.find("content=\"" + tracker.token() + "\"") != std::string::npos);

    SseClient sse(port);
    REQUIRE(sse.next_event());
    tracker.step(5, 14, "RUN apt-get update");
    bool saw_step = false;
    for (int i = 0; i < 10 && !saw_step; ++i) {
        const auto e = sse.next_event(3000ms);
        REQUIRE(e);
        saw_step = nlohmann::json::parse(e->data)["step"] == 5;
    }
    CHECK(saw_step);

    const std::string token = "X-Azops-Token: " + tracker.token() + "\r\n";
    CHECK(round_trip(port, cancel_request(port, token)).status == 409);  // no cancel handler yet
    tracker.on_cancel([&stops] { ++stops; });
    const auto accepted = round_trip(port, cancel_request(port, token));
    CHECK(accepted.status == 202);
    CHECK(stops == 1);
}

}  // TEST_SUITE("tracker feed")
