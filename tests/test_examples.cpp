// The example programs setup_waa and run_waa, end to end: spawned as processes, checked through
// their status file, their HTTP API (the status and its event stream, Stop), their output and exit
// codes; real mode against the fake az (and a stand-in ssh written here); and the pieces they are
// made of that can be checked without a process: the simulated output (read back by the real
// parsers, deterministic per seed) and the terminal progress line.
//
// Needs AZOPS_SETUP_WAA_PATH, AZOPS_RUN_WAA_PATH, AZOPS_FAKE_AZ_PATH and AZOPS_TEST_DATA_DIR.

#include <doctest/doctest.h>

#include <azops/boot_parser.hpp>
#include <azops/docker_parser.hpp>
#include <azops/log_tail.hpp>
#include <azops/process.hpp>
#include <azops/waa_parser.hpp>

#include "../examples/azops_cli/terminal_progress.hpp"
#include "../examples/azops_cli/waa_simulation.hpp"
#include "test_helpers.hpp"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using nlohmann::json;
using azops_test::take_chunks;
using azops_test::ScratchDir;
using azops_test::read_file;
using azops_test::write_file;

// ---- running a program ----

// One example program running as a child process, its merged output collected on a thread.
class Program {
public:
    explicit Program(const std::vector<std::string>& argv, const std::vector<std::string>& environment = {}) {
        std::vector<std::string> full{"env"};
        full.insert(full.end(), environment.begin(), environment.end());
        full.insert(full.end(), argv.begin(), argv.end());
        child_.emplace(azops::ChildProcess::spawn(full));
        pid_ = child_->pid();
        thread_ = std::thread([this] {
            const azops::ExitStatus status = child_->run([this](std::string_view bytes) {
                std::lock_guard<std::mutex> lock(mutex_);
                output_ += bytes;
                changed_.notify_all();
            });
            std::lock_guard<std::mutex> lock(mutex_);
            exit_code_ = status.code;
            changed_.notify_all();
        });
    }

    ~Program() {
        if (!wait(std::chrono::seconds(0))) child_->request_stop();
        thread_.join();
    }

    Program(const Program&) = delete;
    Program& operator=(const Program&) = delete;

    // Waits until the output contains `needle`; false when the program ended or time ran out first.
    bool wait_for_output(const std::string& needle, std::chrono::seconds limit = std::chrono::seconds(30)) {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, limit, [&] { return output_.find(needle) != std::string::npos || exit_code_; }) &&
               output_.find(needle) != std::string::npos;
    }

    // The exit code once the program ended, within `limit`.
    std::optional<int> wait(std::chrono::seconds limit = std::chrono::seconds(90)) {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait_for(lock, limit, [&] { return exit_code_.has_value(); });
        return exit_code_;
    }

    std::string output() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return output_;
    }

    pid_t pid() const { return pid_; }

    // The port of "dashboard at http://127.0.0.1:PORT/", once printed.
    int dashboard_port() {
        const std::string marker = "dashboard at http://127.0.0.1:";
        REQUIRE(wait_for_output(marker));
        const std::string out = output();
        return std::stoi(out.substr(out.find(marker) + marker.size()));
    }

private:
    std::optional<azops::ChildProcess> child_;
    pid_t pid_ = -1;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::string output_;
    std::optional<int> exit_code_;
    std::thread thread_;
};

// Runs a program to its end; returns its exit code and output.
std::pair<int, std::string> run_to_end(const std::vector<std::string>& argv,
                                       const std::vector<std::string>& environment = {}) {
    Program p(argv, environment);
    const auto code = p.wait();
    REQUIRE(code.has_value());
    return {*code, p.output()};
}

json read_json(const std::filesystem::path& p) { return json::parse(read_file(p)); }

std::string fake_az_dir() { return std::filesystem::path(AZOPS_FAKE_AZ_PATH).parent_path().string(); }

std::string path_with_fake_az() { return "PATH=" + fake_az_dir() + ":" + std::string(std::getenv("PATH")); }

// ---- a tiny HTTP/1.1 client (loopback only) ----

struct HttpReply {
    int status = 0;
    std::string body;
};

int connect_loopback(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void send_all(int fd, const std::string& text) {
    std::size_t sent = 0;
    while (sent < text.size()) {
        const ssize_t n = ::send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
        REQUIRE(n > 0);
        sent += static_cast<std::size_t>(n);
    }
}

std::string request_text(int port, const std::string& method, const std::string& path,
                         const std::vector<std::string>& headers) {
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                      "\r\nConnection: close\r\n";
    for (const auto& h : headers) req += h + "\r\n";
    if (method == "POST") req += "Content-Length: 0\r\n";
    return req + "\r\n";
}

std::optional<HttpReply> http(int port, const std::string& method, const std::string& path,
                              const std::vector<std::string>& headers = {}) {
    const int fd = connect_loopback(port);
    if (fd < 0) return std::nullopt;
    send_all(fd, request_text(port, method, path, headers));
    std::string raw;
    char buf[8192];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    const auto head_end = raw.find("\r\n\r\n");
    if (raw.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) return std::nullopt;
    HttpReply reply;
    reply.status = std::stoi(raw.substr(9, 3));
    std::string body = raw.substr(head_end + 4);
    const std::string head = raw.substr(0, head_end);
    reply.body = head.find("Transfer-Encoding: chunked") != std::string::npos ? take_chunks(body) : body;
    return reply;
}

// Follows /api/azure-ops-events until the server goes away, handing every status to `on_status`.
std::vector<json> follow_events(int port, const std::function<void(const json&)>& on_status = {}) {
    std::vector<json> statuses;
    const int fd = connect_loopback(port);
    REQUIRE(fd >= 0);
    send_all(fd, request_text(port, "GET", "/api/azure-ops-events", {"Accept: text/event-stream"}));
    std::string raw;
    std::string stream;
    bool in_body = false;
    char buf[16384];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
        raw.append(buf, static_cast<std::size_t>(n));
        if (!in_body) {
            const auto head_end = raw.find("\r\n\r\n");
            if (head_end == std::string::npos) continue;
            REQUIRE(raw.rfind("HTTP/1.1 200", 0) == 0);
            raw.erase(0, head_end + 4);
            in_body = true;
        }
        stream += take_chunks(raw);
        for (std::size_t end; (end = stream.find("\n\n")) != std::string::npos;) {
            const std::string event = stream.substr(0, end);
            stream.erase(0, end + 2);
            const auto data = event.find("\ndata: ");
            if (event.find("event: status") == std::string::npos || data == std::string::npos) continue;
            statuses.push_back(json::parse(event.substr(data + 7)));
            if (on_status) on_status(statuses.back());
        }
    }
    ::close(fd);
    return statuses;
}

// Presses Stop as the page does, with the run's token from beside the status file.
std::optional<HttpReply> stop_with_token(int port, const std::string& status_file) {
    const std::string token = read_file(status_file + ".token");
    return http(port, "POST", "/api/azure-ops/cancel", {"X-Azops-Token: " + token.substr(0, token.find('\n'))});
}

// Follows the dashboard's events and presses Stop the first time `now` says so; true when the
// server took the request.
bool stop_from_page_when(int port, const std::string& status_file, const std::function<bool(const json&)>& now) {
    bool asked = false;
    follow_events(port, [&](const json& s) {
        if (asked || !now(s)) return;
        const auto reply = stop_with_token(port, status_file);
        asked = reply && reply->status == 202;
    });
    return asked;
}

std::vector<std::string> timeline_names(const json& status) {
    std::vector<std::string> names;
    for (const auto& entry : status["timeline"]) names.push_back(entry["name"].get<std::string>());
    return names;
}

bool log_contains(const json& status, const std::string& text) {
    for (const auto& line : status["log_tail"]) {
        if (line.get<std::string>().find(text) != std::string::npos) return true;
    }
    return false;
}

// Task 1 is under way, its evaluation (a minute at least) still to come.
bool agent_at_work_in_task_1(const json& status) {
    return status["phase"] == "running_task_1" && status["detail"].get<std::string>().find(": step ") != std::string::npos;
}

// The billing rule in this test's own words: a billed VM costs its rate for every hour of the task,
// and for every hour it stays allocated after the task, until the status was last written.
void check_cost_follows_the_rate(const json& status) {
    const double rate = status["hourly_rate_usd"].get<double>();
    const double task_hours = status["elapsed_seconds"].get<double>() / 3600.0;
    const auto started = azops_cli::detail::parse_utc(status["started_at"].get<std::string>());
    const auto written = azops_cli::detail::parse_utc(status["updated_at"].get<std::string>());
    REQUIRE(started);
    REQUIRE(written);
    const double after_hours = std::max(0.0, (*written - *started) / 3600.0 - task_hours);
    const double cost = status["cost_usd"].get<double>();
    CHECK(cost >= rate * task_hours - 0.01);
    CHECK(cost <= rate * (task_hours + after_hours) + 0.01);
}

// A stand-in az that behaves like a VM: created or started it runs, deallocated it is deallocated.
// It keeps the VM's state in AZOPS_FAKE_AZ_STATE_FILE and leaves the rest to the fake az. With
// AZOPS_TEST_CREATE_QUOTA set, a create fails on the quota and leaves no VM.
std::string write_stateful_az(const ScratchDir& dir) {
    const std::string path = (dir / "az").string();
    write_file(path,
               "#!/bin/sh\n"
               "case \"$1 $2\" in\n"
               "    \"vm start\") printf '%s\\n' \"$*\" >> \"$AZOPS_FAKE_AZ_LOG\"; echo running > \"$AZOPS_FAKE_AZ_STATE_FILE\"; exit 0 ;;\n"
               "    \"vm create\") if [ -n \"${AZOPS_TEST_CREATE_QUOTA:-}\" ]; then\n"
               "        unset AZOPS_FAKE_AZ_STATE_FILE; export AZOPS_FAKE_AZ_SCENARIO=quota\n"
               "    else echo running > \"$AZOPS_FAKE_AZ_STATE_FILE\"; fi ;;\n"
               "    \"vm deallocate\") echo deallocated > \"$AZOPS_FAKE_AZ_STATE_FILE\" ;;\n"
               "esac\n"
               "exec '" + std::string(AZOPS_FAKE_AZ_PATH) + "' \"$@\"\n");
    ::chmod(path.c_str(), 0755);
    return path;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t at = 0;
    while (at < text.size()) {
        const auto end = text.find('\n', at);
        lines.push_back(text.substr(at, end == std::string::npos ? std::string::npos : end - at));
        at = end == std::string::npos ? text.size() : end + 1;
    }
    return lines;
}

}  // namespace

// ---- help, usage errors, dry runs ----

TEST_CASE("--help explains each program to a newcomer and exits 0") {
    for (const char* program : {AZOPS_SETUP_WAA_PATH, AZOPS_RUN_WAA_PATH}) {
        const auto [code, out] = run_to_end({program, "--help"});
        CHECK(code == 0);
        CHECK(out.find("Windows Agent Arena") != std::string::npos);
        CHECK(out.find("--simulate") != std::string::npos);
        CHECK(out.find("Example") != std::string::npos);
        CHECK(out.find("130 cancelled") != std::string::npos);
        for (const char* flag : {"--no-open", "--no-serve", "--port", "--status-file", "--history", "--vm-size",
                                 "--region", "--az", "--resource-group", "--vm-name", "--idle-deallocate"}) {
            CHECK_MESSAGE(out.find(flag) != std::string::npos, program << " --help lacks " << flag);
        }
    }
}

TEST_CASE("a usage error exits 2 and says what is wrong") {
    const std::vector<std::vector<std::string>> wrong = {
        {AZOPS_SETUP_WAA_PATH, "--bogus"},
        {AZOPS_SETUP_WAA_PATH, "--only", "vm_create,make_coffee"},
        {AZOPS_SETUP_WAA_PATH, "--simulate-fault", "meteor"},
        {AZOPS_SETUP_WAA_PATH, "--speed", "-3"},
        {AZOPS_RUN_WAA_PATH, "--tasks", "0"},
        {AZOPS_RUN_WAA_PATH, "--model", "gpt'4o"},
        {AZOPS_RUN_WAA_PATH, "--port", "70000"},
    };
    for (const auto& argv : wrong) {
        const auto [code, out] = run_to_end(argv);
        CHECK_MESSAGE(code == 2, argv.back());
        CHECK_MESSAGE(!out.empty(), argv.back());
    }
}

TEST_CASE("setup_waa refuses a real docker_build without a Dockerfile to build, before touching Azure") {
    ScratchDir dir;
    const auto [code, out] = run_to_end({AZOPS_SETUP_WAA_PATH, "--build-context", (dir / "nowhere").string(),
                                         "--status-file", (dir / "s.json").string(), "--no-serve"});
    CHECK(code == 2);
    CHECK(out.find("has no Dockerfile") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "s.json"));
}

TEST_CASE("setup_waa --dry-run prints the real commands, never a plain stop, and runs nothing") {
    ScratchDir dir;
    const auto [code, out] = run_to_end({AZOPS_SETUP_WAA_PATH, "--dry-run", "--vm-size", "Standard_D4ds_v5", "--region",
                                         "westus2", "--idle-deallocate", "45", "--status-file",
                                         (dir / "s.json").string(), "--az", "/opt/az/bin/az"});
    CHECK(code == 0);
    CHECK(out.find("/opt/az/bin/az vm create -g openadapt-agents -n waa-eval-vm --image Ubuntu2204 --size "
                   "Standard_D4ds_v5 --location westus2") != std::string::npos);
    CHECK(out.find("curl -fsSL https://get.docker.com | sh") != std::string::npos);
    CHECK(out.find("docker build --progress=plain -t waa-auto:latest") != std::string::npos);
    CHECK(out.find("docker logs -f winarena") != std::string::npos);
    CHECK(out.find("http://localhost:5000/probe") != std::string::npos);
    CHECK(out.find("/opt/az/bin/az vm deallocate -g openadapt-agents -n waa-eval-vm --no-wait") != std::string::npos);
    CHECK(out.find("vm stop") == std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "s.json"));

    const auto [only_code, only_out] = run_to_end({AZOPS_SETUP_WAA_PATH, "--dry-run", "--only", "windows_boot", "--ip",
                                                   "198.51.100.7"});
    CHECK(only_code == 0);
    CHECK(only_out.find("vm create") == std::string::npos);
    CHECK(only_out.find("docker build") == std::string::npos);
    CHECK(only_out.find("azureuser@198.51.100.7") != std::string::npos);
    CHECK(only_out.find("vm deallocate") == std::string::npos);  // not asked for
}

TEST_CASE("run_waa --dry-run prints the benchmark command and how a stop ends it") {
    const auto [code, out] = run_to_end({AZOPS_RUN_WAA_PATH, "--dry-run", "--tasks", "7", "--idle-deallocate", "30"});
    CHECK(code == 0);
    CHECK(out.find("python -u run.py --model gpt-4o --agent navi --num_tasks 7") != std::string::npos);
    CHECK(out.find("kill -INT") != std::string::npos);
    CHECK(out.find("az vm deallocate -g openadapt-agents -n waa-eval-vm --no-wait") != std::string::npos);
    CHECK(out.find("vm stop") == std::string::npos);
}

// ---- simulations end to end ----

TEST_CASE("setup_waa --simulate: four operations through the status file and the HTTP API, history for the next run") {
    ScratchDir dir;
    const std::string status_file = (dir / "status.json").string();
    const std::string history_file = (dir / "history.json").string();
    const auto run = [&] {
        Program p({AZOPS_SETUP_WAA_PATH, "--simulate", "--speed", "450", "--no-open", "--port", "0", "--linger", "1",
                   "--status-file", status_file, "--history", history_file});
        const int port = p.dashboard_port();
        const auto first = http(port, "GET", "/api/azure-ops-status");
        REQUIRE(first.has_value());
        CHECK(first->status == 200);
        CHECK(json::parse(first->body)["schema"] == "azops.status/1");
        std::vector<json> seen = follow_events(port);
        CHECK(p.wait() == std::optional<int>(0));
        return seen;
    };

    const std::vector<json> first_run = run();
    REQUIRE(!first_run.empty());
    const json final_status = read_json(status_file);
    CHECK(final_status["state"] == "succeeded");
    CHECK(final_status["task"] == "setup-waa");
    CHECK(first_run.back()["state"] == "succeeded");  // the page saw the end
    CHECK(timeline_names(final_status) == std::vector<std::string>{"vm_create", "docker_install", "docker_build",
                                                                   "windows_boot"});
    for (const auto& entry : final_status["timeline"]) CHECK(entry["state"] == "succeeded");
    // About half an hour of simulated work, not the few real seconds it took.
    CHECK(final_status["elapsed_seconds"].get<double>() > 25 * 60);
    CHECK(final_status["elapsed_seconds"].get<double>() < 45 * 60);
    check_cost_follows_the_rate(final_status);
    CHECK(final_status["hourly_rate_usd"].get<double>() == doctest::Approx(0.452));
    CHECK(final_status["vm_size"] == "Standard_D8ds_v5");
    CHECK(final_status["region"] == "eastus");
    CHECK(final_status["vm_ip"].is_string());
    CHECK(final_status["vnc_url"] == "http://localhost:8006");
    CHECK(final_status["phase"] == "waa_server_ready");
    CHECK(log_contains(final_status, "Service is operational"));

    bool saw_build_steps = false, saw_download = false, saw_starting = false, saw_docker_install_step = false,
         saw_server_wait = false;
    for (const json& s : first_run) {
        saw_build_steps |= s["operation"] == "docker_build" && s["total_steps"] == 21 && s["step"].get<int>() >= 18;
        saw_download |= s["operation"] == "windows_boot" && s["phase"] == "downloading_windows";
        saw_starting |= s["vm_state"] == "starting";
        saw_docker_install_step |= s["operation"] == "docker_install" && s["total_steps"] == 3;
        if (s["state"] == "running" && s["phase"] == "waiting_for_waa_server") {
            // Windows started, but the WAA server is the eighth step: the task is not done yet.
            saw_server_wait = true;
            CHECK(s["step"] == 8);
            CHECK(s["total_steps"] == 8);
            CHECK(s["progress_pct"].get<double>() < 99);
        }
        // Without history nothing supports an estimate while the VM is created.
        if (s["state"] == "running" && s["operation"] == "vm_create") CHECK(s["eta_source"] == "none");
    }
    CHECK(saw_build_steps);
    CHECK(saw_download);
    CHECK(saw_starting);
    CHECK(saw_docker_install_step);
    CHECK(saw_server_wait);

    // Each operation's history is its whole duration, also where its steps leave time between them.
    const json history = read_json(history_file);
    for (const json& entry : final_status["timeline"]) {
        const std::string op = entry["name"];
        REQUIRE_MESSAGE(history.contains(op), op);
        CHECK(history[op]["samples"] == 1);
        CHECK(history[op]["avg_seconds"].get<double>() > 30);
        CHECK_MESSAGE(history[op]["avg_seconds"].get<double>() ==
                          doctest::Approx(entry["duration_seconds"].get<double>()).epsilon(0.02), op);
    }
    CHECK(history["windows_boot"]["recent_runs"].back()["steps"].size() == 8);

    // The second run knows from the first how long each operation takes, from its very start.
    const std::vector<json> second_run = run();
    bool early_estimate = false;
    for (const json& s : second_run) {
        if (s["state"] != "running" || (s["operation"] != "vm_create" && s["operation"] != "docker_install")) continue;
        const bool from_history = s["eta_source"] == "history" || s["eta_source"] == "blend";
        early_estimate |= from_history && s["eta_seconds"].is_number() && s["eta_seconds"].get<double>() > 10 * 60 &&
                          s["projected_cost_usd"].is_number();
    }
    CHECK(early_estimate);
    const json second_final = read_json(status_file);
    CHECK(second_final["state"] == "succeeded");
    CHECK(read_json(history_file)["docker_build"]["samples"] == 2);
    // Same seed, same run: the end of the log (no timestamps in it) is the same.
    CHECK(second_final["log_tail"] == final_status["log_tail"]);
}

TEST_CASE("run_waa --simulate: task K of N through WAA's own log, benchmark_per_task history, an ETA from it") {
    ScratchDir dir;
    const std::string status_file = (dir / "status.json").string();
    const std::string history_file = (dir / "history.json").string();
    const auto run = [&](const char* seed) {
        Program p({AZOPS_RUN_WAA_PATH, "--simulate", "--tasks", "4", "--speed", "600", "--seed", seed, "--no-open",
                   "--port", "0", "--linger", "1", "--status-file", status_file, "--history", history_file});
        std::vector<json> seen = follow_events(p.dashboard_port());
        CHECK(p.wait() == std::optional<int>(0));
        return seen;
    };
    const std::vector<json> first_run = run("1");
    const json final_status = read_json(status_file);
    CHECK(final_status["state"] == "succeeded");
    CHECK(final_status["task"] == "run-waa");
    CHECK(timeline_names(final_status) == std::vector<std::string>{"benchmark"});
    CHECK(final_status["step"] == 4);
    CHECK(final_status["total_steps"] == 4);
    CHECK(final_status["phase"] == "finished");
    CHECK(final_status["detail"].get<std::string>().find("Finished 4 tasks") != std::string::npos);
    CHECK(log_contains(final_status, "Average score: "));
    check_cost_follows_the_rate(final_status);
    bool saw_task_phase = false, saw_counts = false;
    for (const json& s : first_run) {
        saw_task_phase |= s["phase"] == "running_task_2" && s["step"] == 2 && s["total_steps"] == 4;
        // Results so far: every task before the running one has passed or failed, and the running one
        // too once its result is in (the phase moves on only when the next task starts).
        if (s["phase"] == "running_task_3") {
            saw_counts = true;
            const int results = s["tasks_succeeded"].get<int>() + s["tasks_failed"].get<int>();
            CHECK((results == 2 || results == 3));
        }
    }
    CHECK(saw_task_phase);
    CHECK(saw_counts);
    CHECK(final_status["tasks_succeeded"].get<int>() + final_status["tasks_failed"].get<int>() == 4);
    const json history = read_json(history_file);
    REQUIRE(history.contains("benchmark_per_task"));
    CHECK(history["benchmark_per_task"]["samples"] == 4);
    CHECK(history["benchmark_per_task"]["avg_seconds"].get<double>() > 2 * 60);

    const std::vector<json> second_run = run("2");
    bool early_estimate = false;
    for (const json& s : second_run) {
        if (s["phase"] != "running_task_1") continue;
        early_estimate |= (s["eta_source"] == "history" || s["eta_source"] == "blend") && s["eta_seconds"].is_number();
    }
    CHECK(early_estimate);
    CHECK(read_json(history_file)["benchmark_per_task"]["samples"] == 8);
}

TEST_CASE("run_waa: Stop on the page ends the run after the current task is finished and cleaned up") {
    ScratchDir dir;
    const std::string status_file = (dir / "status.json").string();
    Program p({AZOPS_RUN_WAA_PATH, "--simulate", "--tasks", "3", "--speed", "120", "--no-open", "--port", "0",
               "--linger", "0.5", "--status-file", status_file, "--history", (dir / "history.json").string()});
    const int port = p.dashboard_port();
    std::optional<HttpReply> without_token, with_token;
    follow_events(port, [&](const json& s) {
        if (with_token || !agent_at_work_in_task_1(s)) return;
        without_token = http(port, "POST", "/api/azure-ops/cancel");
        with_token = stop_with_token(port, status_file);
    });
    CHECK(p.wait() == std::optional<int>(130));
    REQUIRE(without_token.has_value());
    CHECK(without_token->status == 403);
    REQUIRE(with_token.has_value());
    CHECK(with_token->status == 202);

    const json s = read_json(status_file);
    CHECK(s["state"] == "cancelled");
    CHECK(s["timeline"].back()["state"] == "cancelled");
    const std::string error = s["error"].get<std::string>();
    CHECK(error.find("stopped from the dashboard") != std::string::npos);
    CHECK(error.find("after task 1 of 3") != std::string::npos);
    CHECK(error.find("2 tasks not run") != std::string::npos);
    // The task ran to its result and clean-up, and no other task began.
    const auto tail = s["log_tail"];
    std::size_t finished_at = tail.size();
    for (std::size_t i = 0; i < tail.size(); ++i) {
        if (tail[i].get<std::string>().find("Finished ") != std::string::npos) finished_at = i;
    }
    REQUIRE(finished_at < tail.size());
    CHECK(tail[finished_at - 1].get<std::string>().find("Result: ") != std::string::npos);
    CHECK(finished_at == tail.size() - 1);
    CHECK_FALSE(std::filesystem::exists(status_file + ".token"));  // the run is over
}

TEST_CASE("run_waa: a stop through the .cancel file waits for the task too; a second Ctrl-C stops at once") {
    ScratchDir dir;
    const std::string status_file = (dir / "status.json").string();
    SUBCASE(".cancel file with the run's token") {
        Program p({AZOPS_RUN_WAA_PATH, "--simulate", "--tasks", "3", "--speed", "120", "--no-open", "--port", "0",
                   "--linger", "0", "--status-file", status_file, "--history", ""});
        follow_events(p.dashboard_port(), [&](const json& s) {
            if (agent_at_work_in_task_1(s) && !std::filesystem::exists(status_file + ".cancel")) {
                write_file(status_file + ".cancel", read_file(status_file + ".token"));
            }
        });
        CHECK(p.wait() == std::optional<int>(130));
        const json s = read_json(status_file);
        CHECK(s["state"] == "cancelled");
        CHECK(s["error"].get<std::string>().find("after task 1 of 3") != std::string::npos);
    }
    SUBCASE("Ctrl-C twice") {
        Program p({AZOPS_RUN_WAA_PATH, "--simulate", "--tasks", "3", "--speed", "60", "--no-open", "--port", "0",
                   "--linger", "0", "--status-file", status_file, "--history", ""});
        int interrupts = 0;
        follow_events(p.dashboard_port(), [&](const json& s) {
            if (interrupts == 0 && agent_at_work_in_task_1(s)) {
                ::kill(p.pid(), SIGINT);
                ++interrupts;
            } else if (interrupts == 1 && s["phase"] == "running_task_1" && s["notice"].is_string() &&
                       s["notice"].get<std::string>().find("finishes and is cleaned up first") != std::string::npos) {
                ::kill(p.pid(), SIGINT);
                ++interrupts;
            }
        });
        CHECK(p.wait() == std::optional<int>(130));
        CHECK(interrupts == 2);
        const json s = read_json(status_file);
        CHECK(s["state"] == "cancelled");
        CHECK(s["error"].get<std::string>().find("interrupted (Ctrl-C), during task 1 of 3") != std::string::npos);
    }
}

TEST_CASE("setup_waa: Stop ends a simulated setup at once, cancelled, exit 130") {
    ScratchDir dir;
    const std::string status_file = (dir / "status.json").string();
    Program p({AZOPS_SETUP_WAA_PATH, "--simulate", "--speed", "100", "--no-open", "--port", "0", "--linger", "0",
               "--status-file", status_file, "--history", ""});
    CHECK(stop_from_page_when(p.dashboard_port(), status_file, [](const json& s) { return s["operation"] == "docker_install"; }));
    CHECK(p.wait() == std::optional<int>(130));
    const json s = read_json(status_file);
    CHECK(s["state"] == "cancelled");
    CHECK(s["operation"] == "docker_install");
    CHECK(timeline_names(s) == std::vector<std::string>{"vm_create", "docker_install"});
    CHECK(s["error"] == "stopped from the dashboard");
}

TEST_CASE("setup_waa --simulate-fault: failures end the task failed with the output's own error, exit 1") {
    ScratchDir dir;
    const std::string status_file = (dir / "status.json").string();
    const auto run = [&](const char* fault, const char* only) {
        const auto [code, out] = run_to_end({AZOPS_SETUP_WAA_PATH, "--simulate", "--simulate-fault", fault, "--only", only,
                                             "--speed", "3000", "--no-serve", "--status-file", status_file, "--history",
                                             (dir / "history.json").string()});
        CHECK(code == 1);
        return read_json(status_file);
    };
    const json quota = run("quota", "vm_create");
    CHECK(quota["state"] == "failed");
    CHECK(quota["error"].get<std::string>().find("QuotaExceeded") != std::string::npos);
    CHECK(quota["vm_state"] == "absent");  // the VM never existed: nothing to deallocate, nothing billed
    // Only the seconds before az first answered are billed, as assumed.
    CHECK(quota["cost_usd"].get<double>() < 0.001);

    const json build = run("build-error", "docker_build");
    CHECK(build["state"] == "failed");
    CHECK(build["timeline"].back()["state"] == "failed");
    CHECK(build["error"].get<std::string>().find("did not complete successfully: exit code: 127") != std::string::npos);

    const json boot = run("boot-error", "windows_boot");
    CHECK(boot["state"] == "failed");
    CHECK(boot["error"].get<std::string>().find("Not enough free space") != std::string::npos);

    // A failed operation records nothing: the history knows only operations that ended well.
    CHECK_FALSE(std::filesystem::exists(dir / "history.json"));
}

// ---- idle deallocation ----

TEST_CASE("--idle-deallocate in a simulation counts down on the simulated clock, warns, then deallocates") {
    ScratchDir dir;
    const std::string status_file = (dir / "status.json").string();
    const auto [code, out] = run_to_end({AZOPS_SETUP_WAA_PATH, "--simulate", "--only", "vm_create", "--speed", "2000",
                                         "--idle-deallocate", "20", "--no-serve", "--status-file", status_file,
                                         "--history", ""});
    CHECK(code == 0);
    CHECK(out.find("the task has succeeded and VM waa-eval-vm is still allocated (billed at $0.452/h): it will be "
                   "deallocated at") != std::string::npos);
    CHECK(out.find("in 20 min (--idle-deallocate)") != std::string::npos);
    CHECK(out.find("will be deallocated in 15 min") != std::string::npos);
    CHECK(out.find("will be deallocated in 5 min") != std::string::npos);
    CHECK(out.find("idle for 20 min: deallocating VM waa-eval-vm") != std::string::npos);
    CHECK(out.find("deallocates in ") != std::string::npos);  // the terminal line shows the countdown
    const json s = read_json(status_file);
    CHECK(s["state"] == "succeeded");
    CHECK(s["vm_state"] == "deallocated");
    CHECK(s["idle_deallocate_at"].is_null());
    CHECK(s["notice"].get<std::string>().find("is deallocated") != std::string::npos);
}

TEST_CASE("--idle-deallocate in a simulation with --az runs az vm deallocate, never a plain stop") {
    ScratchDir dir;
    const std::string az_log = (dir / "az.log").string();
    const std::string status_file = (dir / "status.json").string();
    const auto [code, out] = run_to_end({AZOPS_RUN_WAA_PATH, "--simulate", "--tasks", "1", "--speed", "3000", "--az",
                                         AZOPS_FAKE_AZ_PATH, "--idle-deallocate", "10", "--no-serve", "--status-file",
                                         status_file, "--history", ""},
                                        {"AZOPS_FAKE_AZ_LOG=" + az_log});
    CHECK(code == 0);
    const std::string calls = read_file(az_log);
    CHECK(calls == "vm deallocate -g openadapt-agents -n waa-eval-vm --no-wait\n");
    CHECK(read_json(status_file)["vm_state"] == "deallocated");
}

TEST_CASE("--idle-deallocate under a stalled task: the VM is deallocated and the task fails") {
    ScratchDir dir;
    const std::string status_file = (dir / "status.json").string();
    const auto [code, out] = run_to_end({AZOPS_SETUP_WAA_PATH, "--simulate", "--only", "docker_build",
                                         "--simulate-fault", "stall", "--speed", "600", "--idle-deallocate", "8",
                                         "--no-serve", "--status-file", status_file, "--history", ""});
    CHECK(code == 1);
    CHECK(out.find("the task is stalled and VM waa-eval-vm is still allocated") != std::string::npos);
    const json s = read_json(status_file);
    CHECK(s["state"] == "failed");
    CHECK(s["error"].get<std::string>().find("stalled: the VM was deallocated after 8 min") != std::string::npos);
    CHECK(s["vm_state"] == "deallocated");
}

// ---- real mode against the fake az ----

TEST_CASE("setup_waa --only vm_create against the fake az on PATH") {
    ScratchDir dir;
    const std::string status_file = (dir / "status.json").string();
    const std::string az_log = (dir / "az.log").string();
    const auto run = [&](const std::string& scenario) {
        std::remove(az_log.c_str());
        return run_to_end({AZOPS_SETUP_WAA_PATH, "--only", "vm_create", "--no-serve", "--poll-interval", "0.2",
                           "--status-file", status_file, "--history", ""},
                          {path_with_fake_az(), "AZOPS_FAKE_AZ_SCENARIO=" + scenario, "AZOPS_FAKE_AZ_LOG=" + az_log});
    };
    SUBCASE("a running VM is used as it is") {
        const auto [code, out] = run("running");
        CHECK(code == 0);
        const json s = read_json(status_file);
        CHECK(s["state"] == "succeeded");
        CHECK(s["vm_state"] == "running");
        CHECK(s["vm_ip"] == "203.0.113.47");
        CHECK(s["detail"] == "VM waa-eval-vm exists and is running: using it");
        const std::string calls = read_file(az_log);
        CHECK(calls.find("vm get-instance-view -g openadapt-agents -n waa-eval-vm -o json") != std::string::npos);
        CHECK(calls.find("vm create") == std::string::npos);
        CHECK(calls.find("vm stop") == std::string::npos);
        CHECK(out.find("is still allocated and billed") != std::string::npos);  // the reminder
    }
    SUBCASE("not logged in: a clear failure, exit 1, never a crash") {
        const auto [code, out] = run("not_logged_in");
        CHECK(code == 1);
        const json s = read_json(status_file);
        CHECK(s["state"] == "failed");
        CHECK(s["error"] == "not logged in to Azure (or the login expired): run 'az login', then try again");
        CHECK(out.find("run 'az login'") != std::string::npos);
    }
    SUBCASE("output that is not az's JSON") {
        const auto [code, out] = run("garbage");
        CHECK(code == 1);
        const json s = read_json(status_file);
        CHECK(s["state"] == "failed");
        CHECK(s["error"].get<std::string>().find("az printed something unexpected") != std::string::npos);
    }
    SUBCASE("a deallocated VM must be started, and this az cannot start it") {
        const auto [code, out] = run("deallocated");
        CHECK(code == 1);
        const json s = read_json(status_file);
        CHECK(s["state"] == "failed");
        CHECK(s["error"].get<std::string>().find("az vm start") != std::string::npos);
        CHECK(read_file(az_log).find("vm start -g openadapt-agents -n waa-eval-vm") != std::string::npos);
    }
}

TEST_CASE("setup_waa --only vm_create: a missing VM is created with the size asked for") {
    ScratchDir dir;
    const std::string state_file = (dir / "vm_state").string();
    const std::string az_log = (dir / "az.log").string();
    const std::string status_file = (dir / "status.json").string();
    write_file(state_file, "not_found\n");
    const std::string az = write_stateful_az(dir);
    const auto [code, out] = run_to_end({AZOPS_SETUP_WAA_PATH, "--only", "vm_create", "--az", az, "--vm-size",
                                         "Standard_D4ds_v5", "--no-serve", "--poll-interval", "0.2", "--status-file",
                                         status_file, "--history", (dir / "history.json").string()},
                                        {"AZOPS_FAKE_AZ_STATE_FILE=" + state_file, "AZOPS_FAKE_AZ_LOG=" + az_log});
    CHECK(code == 0);
    const std::string calls = read_file(az_log);
    CHECK(calls.find("vm create -g openadapt-agents -n waa-eval-vm --image Ubuntu2204 --size Standard_D4ds_v5") !=
          std::string::npos);
    const json s = read_json(status_file);
    CHECK(s["state"] == "succeeded");
    CHECK(s["vm_state"] == "running");
    CHECK(s["vm_ip"] == "203.0.113.47");
    CHECK(log_contains(s, "\"publicIpAddress\": \"203.0.113.47\""));
    CHECK(read_json(dir / "history.json")["vm_create"]["samples"] == 1);
}

TEST_CASE("setup_waa --only vm_create: a create that fails leaves the VM absent, billed for nothing") {
    ScratchDir dir;
    const std::string state_file = (dir / "vm_state").string();
    const std::string status_file = (dir / "status.json").string();
    write_file(state_file, "not_found\n");
    const std::string az = write_stateful_az(dir);
    const auto [code, out] = run_to_end({AZOPS_SETUP_WAA_PATH, "--only", "vm_create", "--az", az, "--os-disk-gb", "256",
                                         "--no-serve", "--poll-interval", "0.2", "--status-file", status_file,
                                         "--history", ""},
                                        {"AZOPS_FAKE_AZ_STATE_FILE=" + state_file, "AZOPS_TEST_CREATE_QUOTA=1"});
    CHECK(code == 1);
    const json s = read_json(status_file);
    CHECK(s["state"] == "failed");
    CHECK(s["error"].get<std::string>().find("QuotaExceeded") != std::string::npos);
    CHECK(s["vm_state"] == "absent");
    CHECK(s["cost_usd"].get<double>() < 0.001);
    CHECK(log_contains(s, "--os-disk-size-gb 256"));
}

TEST_CASE("setup_waa real mode: a stopped VM (still billed) is started, then deallocated when idle, never stopped") {
    ScratchDir dir;
    const std::string state_file = (dir / "vm_state").string();
    const std::string az_log = (dir / "az.log").string();
    const std::string status_file = (dir / "status.json").string();
    write_file(state_file, "stopped\n");
    const std::string az = write_stateful_az(dir);
    const auto [code, out] = run_to_end({AZOPS_SETUP_WAA_PATH, "--only", "vm_create", "--az", az, "--idle-deallocate",
                                         "0.02", "--no-serve", "--poll-interval", "0.2", "--status-file", status_file,
                                         "--history", ""},
                                        {"AZOPS_FAKE_AZ_STATE_FILE=" + state_file, "AZOPS_FAKE_AZ_LOG=" + az_log});
    CHECK(code == 0);
    const std::string calls = read_file(az_log);
    CHECK(calls.find("vm start -g openadapt-agents -n waa-eval-vm") != std::string::npos);
    CHECK(calls.find("vm deallocate -g openadapt-agents -n waa-eval-vm --no-wait") != std::string::npos);
    CHECK(calls.find("vm stop") == std::string::npos);
    CHECK(calls.find("vm deallocate") > calls.find("vm start"));
    const json s = read_json(status_file);
    CHECK(s["state"] == "succeeded");
    CHECK(s["vm_state"] == "deallocated");
    CHECK(out.find("deallocating VM waa-eval-vm") != std::string::npos);
}

TEST_CASE("a failed idle deallocation is said loudly and makes the exit code 1") {
    ScratchDir dir;
    const std::string state_file = (dir / "vm_state").string();
    const std::string status_file = (dir / "status.json").string();
    write_file(state_file, "running\n");
    // An az that answers everything but refuses to deallocate.
    const std::string az = (dir / "az").string();
    write_file(az, "#!/bin/sh\nif [ \"$1 $2\" = \"vm deallocate\" ]; then echo 'ERROR: (AuthorizationFailed) no "
                   "permission to deallocate' >&2; exit 1; fi\nexec '" +
                       std::string(AZOPS_FAKE_AZ_PATH) + "' \"$@\"\n");
    ::chmod(az.c_str(), 0755);
    const auto [code, out] = run_to_end({AZOPS_SETUP_WAA_PATH, "--only", "vm_create", "--az", az, "--idle-deallocate",
                                         "0.01", "--no-serve", "--poll-interval", "0.2", "--status-file", status_file,
                                         "--history", ""},
                                        {"AZOPS_FAKE_AZ_STATE_FILE=" + state_file});
    CHECK(code == 1);
    CHECK(out.find("the idle deallocation failed: az exited with code 1: (AuthorizationFailed)") != std::string::npos);
    const json s = read_json(status_file);
    CHECK(s["state"] == "succeeded");
    CHECK(s["vm_state"] == "running");
    CHECK(s["notice"].get<std::string>().find("still allocated and billed") != std::string::npos);
}

// ---- real mode over a stand-in ssh ----

TEST_CASE("setup_waa real mode over ssh: install, build, boot and probe, read back from real output") {
    ScratchDir dir;
    const std::string ssh_log = (dir / "ssh.log").string();
    const std::string status_file = (dir / "status.json").string();
    std::filesystem::create_directories(dir / "context");
    write_file(dir / "context" / "Dockerfile", "FROM dockurr/windows:latest\n");
    // Answers each command with what the VM prints; the log follower never ends by itself, and the
    // WAA server answers the third probe.
    const std::string data = AZOPS_TEST_DATA_DIR;
    const std::string ssh = (dir / "ssh").string();
    write_file(ssh, "#!/bin/sh\n"
                    "eval \"cmd=\\${$#}\"\n"
                    "printf '%s\\n' \"$cmd\" >> '" + ssh_log + "'\n"
                    "case \"$cmd\" in\n"
                    "  *get.docker.com*) echo '# Executing docker install script, commit: 0123abcd' ;;\n"
                    "  */dev/kvm*) echo 'KVM: /dev/kvm is present' ;;\n"
                    "  *'docker build --progress=plain'*) cat '" + data + "/docker/buildkit_waa.log' ;;\n"
                    "  *'docker run -d'*) echo 3f5e0c2a9b8d ;;\n"
                    "  *'docker logs -f'*) cat '" + data + "/boot/first_boot.log'; sleep 60 ;;\n"
                    "  *probe*) n=$(grep -c probe '" + ssh_log + "')\n"
                    "           if [ \"$n\" -lt 3 ]; then echo 'curl: (56) Recv failure: Connection reset by peer'; exit 56; fi\n"
                    "           echo '{\"message\": \"Service is operational\", \"status\": \"Probe successful\"}' ;;\n"
                    "esac\n");
    ::chmod(ssh.c_str(), 0755);
    const auto [code, out] = run_to_end(
        {AZOPS_SETUP_WAA_PATH, "--only", "docker_install,docker_build,windows_boot", "--ip", "198.51.100.7", "--ssh", ssh,
         "--scp", ssh, "--az", AZOPS_FAKE_AZ_PATH, "--build-context", (dir / "context").string(), "--probe-interval",
         "0.05", "--poll-interval", "0.2", "--no-serve", "--status-file", status_file, "--history",
         (dir / "history.json").string()});
    CHECK(code == 0);
    const json s = read_json(status_file);
    CHECK(s["state"] == "succeeded");
    CHECK(timeline_names(s) == std::vector<std::string>{"docker_install", "docker_build", "windows_boot"});
    CHECK(s["phase"] == "waa_server_ready");
    CHECK(s["step"] == 8);  // the boot log's 7 steps, then the wait for the WAA server
    const std::vector<std::string> commands = lines_of(read_file(ssh_log));
    REQUIRE(commands.size() == 11);
    CHECK(commands[0].find("curl -fsSL https://get.docker.com | sh") != std::string::npos);
    CHECK(commands[4] == "azureuser@198.51.100.7:waa-build");  // scp's destination
    CHECK(commands[5].find("docker build --progress=plain") != std::string::npos);
    CHECK(commands[7] == "docker logs -f winarena");
    const json history = read_json(dir / "history.json");
    CHECK(history["docker_build"]["recent_runs"].back()["steps"].size() == 21);
    CHECK(history.contains("windows_boot"));
}

TEST_CASE("run_waa real mode over ssh: WAA's own log read back; a stop waits for the task, then ends it on the VM") {
    ScratchDir dir;
    const std::string ssh_log = (dir / "ssh.log").string();
    const std::string status_file = (dir / "status.json").string();
    // The benchmark prints a recorded WAA log, at once or line by line as a run would.
    const std::string ssh = (dir / "ssh").string();
    write_file(ssh, "#!/bin/sh\n"
                    "eval \"cmd=\\${$#}\"\n"
                    "printf '%s\\n' \"$cmd\" >> '" + ssh_log + "'\n"
                    "case \"$cmd\" in\n"
                    "  *run.py*) if [ -n \"$FAKE_WAA_PACED\" ]; then\n"
                    "               while IFS= read -r line; do printf '%s\\n' \"$line\"; sleep 0.005; done < \"$FAKE_WAA_LOG\"\n"
                    "             else cat \"$FAKE_WAA_LOG\"; fi\n"
                    "             exit \"${FAKE_WAA_EXIT:-0}\" ;;\n"
                    "esac\n");
    ::chmod(ssh.c_str(), 0755);
    const std::string data = AZOPS_TEST_DATA_DIR;
    const std::vector<std::string> argv{AZOPS_RUN_WAA_PATH, "--tasks", "13", "--ip", "198.51.100.7", "--ssh", ssh,
                                        "--az", AZOPS_FAKE_AZ_PATH, "--poll-interval", "0.2", "--no-open", "--port", "0",
                                        "--linger", "0", "--status-file", status_file, "--history",
                                        (dir / "history.json").string()};
    SUBCASE("to the end") {
        const auto [code, out] = run_to_end(argv, {"FAKE_WAA_LOG=" + data + "/waa/small_run.log"});
        CHECK(code == 0);
        const json s = read_json(status_file);
        CHECK(s["state"] == "succeeded");
        CHECK(s["total_steps"] == 13);
        CHECK(s["step"] == 13);
        CHECK(s["phase"] == "finished");
        CHECK(read_json(dir / "history.json")["benchmark_per_task"]["samples"].get<int>() >= 12);
        CHECK(read_file(ssh_log).find("python -u run.py --model gpt-4o --agent navi --num_tasks 13") != std::string::npos);
    }
    SUBCASE("Stop on the page") {
        Program p(argv, {"FAKE_WAA_LOG=" + data + "/waa/small_run.log", "FAKE_WAA_PACED=1"});
        CHECK(stop_from_page_when(p.dashboard_port(), status_file, agent_at_work_in_task_1));
        CHECK(p.wait() == std::optional<int>(130));
        const json s = read_json(status_file);
        CHECK(s["state"] == "cancelled");
        CHECK(s["error"].get<std::string>().find("after task 1 of 13") != std::string::npos);
        const auto commands = lines_of(read_file(ssh_log));
        REQUIRE(commands.size() == 2);
        CHECK(commands[1].find("kill -INT") != std::string::npos);  // the benchmark is ended on the VM too
    }
    SUBCASE("the benchmark crashes") {
        const auto [code, out] = run_to_end(argv, {"FAKE_WAA_LOG=" + data + "/waa/interrupted_traceback.log",
                                                   "FAKE_WAA_EXIT=1"});
        CHECK(code == 1);
        const json s = read_json(status_file);
        CHECK(s["state"] == "failed");
        CHECK(s["error"].get<std::string>().find("exited with code 1") != std::string::npos);
        CHECK(s["error"].get<std::string>().find("FileNotFoundError") != std::string::npos);
    }
}

// ---- the simulated output, read back by the real parsers ----

namespace {

azops_cli::sim::SetupSimulation default_setup(std::uint64_t seed) {
    azops_cli::sim::SetupSimulation sim;
    sim.vm.vm = azops::AzureVm{"openadapt-agents", "waa-eval-vm"};
    sim.operations = {"vm_create", "docker_install", "docker_build", "windows_boot"};
    sim.seed = seed;
    return sim;
}

// The lines of one operation in a script.
std::vector<std::string> operation_lines(const azops_cli::sim::Script& script, const std::string& op) {
    std::vector<std::string> lines;
    bool inside = false;
    for (const auto& e : script.events()) {
        if (e.kind == azops_cli::sim::Event::Kind::operation) inside = e.text == op;
        else if (inside && e.kind == azops_cli::sim::Event::Kind::line) lines.push_back(azops::sanitize_line(e.text));
    }
    return lines;
}

double operation_seconds(const azops_cli::sim::Script& script, const std::string& op) {
    std::optional<double> start;
    for (const auto& e : script.events()) {
        if (e.kind != azops_cli::sim::Event::Kind::operation && e.kind != azops_cli::sim::Event::Kind::end) continue;
        if (start) return e.at - *start;
        if (e.text == op) start = e.at;
    }
    return 0;
}

}  // namespace

TEST_CASE("the simulated setup prints what the real tools print, in their formats") {
    const auto plan = azops_cli::sim::setup_waa_script(default_setup(1), "waa_deploy");
    const auto& script = plan.script;

    azops::DockerStepParser docker;
    double t = 0;
    for (const auto& line : operation_lines(script, "docker_build")) docker.feed(line, t += 1);
    CHECK(docker.is_docker_build());
    CHECK(docker.outcome() == azops::BuildOutcome::succeeded);
    CHECK(docker.total_steps() == 21);
    CHECK(docker.steps().size() == 21);

    azops::BootLogParser boot;
    for (const auto& line : operation_lines(script, "windows_boot")) boot.feed(line);
    CHECK(boot.phase() == azops::BootPhase::started);
    CHECK(boot.vnc_hint_url() == std::optional<std::string>("http://127.0.0.1:8006/"));
    CHECK_FALSE(boot.error());

    const auto vm_lines = operation_lines(script, "vm_create");
    std::string json_text;
    for (const auto& line : vm_lines) {
        if (!json_text.empty() || line == "{") json_text += line + "\n";
    }
    const azops::AzureVmStatus created = azops::parse_vm_create(json_text);
    CHECK_FALSE(created.error);
    CHECK(created.ip == std::optional<std::string>(plan.ip));
    CHECK(created.name == std::optional<std::string>("waa-eval-vm"));

    // wget's rows as dot:giga prints them, the same columns as a recorded boot.
    bool saw_first_row = false;
    for (const auto& line : operation_lines(script, "windows_boot")) {
        if (line.rfind("     0K ........ ........ ........ ........  0% ", 0) == 0) saw_first_row = true;
    }
    CHECK(saw_first_row);
    // Colour and carriage returns are in the raw lines, as the container writes them.
    bool saw_colour = false, saw_carriage_return = false;
    for (const auto& e : script.events()) {
        saw_colour |= e.text.find("\x1b[1;34m\xE2\x9D\xAF \x1b[1;36m") != std::string::npos;
        saw_carriage_return |= !e.text.empty() && e.text.back() == '\r';
    }
    CHECK(saw_colour);
    CHECK(saw_carriage_return);
}

TEST_CASE("simulated durations are those of real runs, and the same seed gives the same run") {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        const auto plan = azops_cli::sim::setup_waa_script(default_setup(seed), "ctx");
        CAPTURE(seed);
        CHECK(plan.script.duration() > 25 * 60);
        CHECK(plan.script.duration() < 42 * 60);
        CHECK(operation_seconds(plan.script, "vm_create") > 90);
        CHECK(operation_seconds(plan.script, "vm_create") < 200);
        CHECK(operation_seconds(plan.script, "docker_build") > 8 * 60);
        CHECK(operation_seconds(plan.script, "windows_boot") > 10 * 60);
    }
    const auto same = [](const azops_cli::sim::Script& a, const azops_cli::sim::Script& b) {
        if (a.events().size() != b.events().size()) return false;
        for (std::size_t i = 0; i < a.events().size(); ++i) {
            const auto& x = a.events()[i];
            const auto& y = b.events()[i];
            if (x.at != y.at || x.kind != y.kind || x.text != y.text) return false;
        }
        return true;
    };
    const auto one = azops_cli::sim::setup_waa_script(default_setup(7), "ctx");
    CHECK(same(one.script, azops_cli::sim::setup_waa_script(default_setup(7), "ctx").script));
    CHECK_FALSE(same(one.script, azops_cli::sim::setup_waa_script(default_setup(8), "ctx").script));

    azops_cli::sim::BenchmarkSimulation bench;
    bench.tasks = 13;
    bench.seed = 7;
    const auto start = std::chrono::system_clock::time_point(std::chrono::seconds(1796000000));
    CHECK(same(azops_cli::sim::run_waa_script(bench, start), azops_cli::sim::run_waa_script(bench, start)));
    const double per_task = azops_cli::sim::run_waa_script(bench, start).duration() / 13;
    CHECK(per_task > 3 * 60);
    CHECK(per_task < 10 * 60);
}

TEST_CASE("the simulated benchmark is WAA's log: task K of N, results, the average score") {
    azops_cli::sim::BenchmarkSimulation bench;
    bench.tasks = 6;
    bench.seed = 3;
    const auto start = std::chrono::system_clock::time_point(std::chrono::seconds(1796000000));
    const auto script = azops_cli::sim::run_waa_script(bench, start);
    azops::WaaLogParser waa;
    int task_ends = 0;
    for (const auto& e : script.events()) {
        if (e.kind == azops_cli::sim::Event::Kind::line) waa.feed(azops::sanitize_line(e.text));
        if (e.kind == azops_cli::sim::Event::Kind::task_end) {
            ++task_ends;
            CHECK(waa.tasks_done() == task_ends);  // the safe place to stop is after WAA's Finished line
        }
    }
    CHECK(task_ends == 6);
    CHECK(waa.total_tasks() == 6);
    CHECK(waa.is_finished());
    CHECK(waa.successes() + waa.failures() == 6);
    REQUIRE(waa.average_score());
    CHECK(*waa.average_score() == doctest::Approx(waa.successes() / 6.0));
    // The first record carries the start time, as WAA's logger prints it (UTC on an Azure VM).
    bool dated = false;
    for (const auto& e : script.events()) {
        dated |= e.text.find("[2026-11-30 00:53:2") != std::string::npos && e.text.find(" \x1b[31mINFO \x1b[32mrun/") != std::string::npos;
    }
    CHECK(dated);
}

// ---- the terminal progress line ----

TEST_CASE("the progress line says operation, step, %, ETA and cost; then how it ended") {
    azops::OpsStatus s;
    s.task = "setup-waa";
    s.state = "running";
    s.operation = "docker_build";
    s.step = 18;
    s.total_steps = 21;
    s.progress_pct = 46.7;
    s.eta_seconds = 750;
    s.cost_usd = 0.2149;
    s.projected_cost_usd = 0.352;
    s.detail = "RUN /opt/venv/bin/pip install --no-cache-dir -r /client/requirements.txt";
    s.vm_state = "running";
    CHECK(azops_cli::render_progress_line(s) ==
          "docker_build 18/21  46%  ETA 12m30s  $0.21 of ~$0.35  RUN /opt/venv/bin/pip install --no-cache-dir -r "
          "/client/requirements.txt");
    s.stalled_seconds = 372;
    CHECK(azops_cli::render_progress_line(s).find("STALLED 6m12s") != std::string::npos);
    s.stalled_seconds.reset();
    s.eta_seconds.reset();
    CHECK(azops_cli::render_progress_line(s).find("ETA ?") != std::string::npos);
    s.state = "failed";
    s.elapsed_seconds = 3725;
    s.error = "the docker build failed (exited with code 1)";
    s.vm_state = "stopped";
    s.updated_at = "2026-11-29T10:00:00Z";
    s.idle_deallocate_at = "2026-11-29T10:14:00Z";
    CHECK(azops_cli::render_progress_line(s) ==
          "docker_build 18/21  failed after 1h02m  $0.21  VM stopped  deallocates in 14m00s  the docker build failed "
          "(exited with code 1)");
    CHECK(azops_cli::render_progress_line(azops::OpsStatus{}).find("idle") == std::string::npos);

    azops::OpsStatus bench;
    bench.task = "run-waa";
    bench.operation = "benchmark";
    bench.step = 5;
    bench.total_steps = 13;
    bench.tasks_succeeded = 3;
    bench.tasks_failed = 1;
    CHECK(azops_cli::render_progress_line(bench).rfind("benchmark 5/13  3 passed 1 failed  0%", 0) == 0);
}

namespace {

// What a TerminalProgress writes, through a pipe.
std::string printed(bool redraw, const std::function<void(azops_cli::TerminalProgress&)>& use) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    azops::OpsStatus status;
    status.task = "run-waa";
    status.state = "running";
    status.operation = "benchmark";
    status.step = 3;
    status.total_steps = 13;
    status.progress_pct = 15.4;
    status.cost_usd = 0.1;
    {
        azops_cli::TerminalProgress progress([status] { return status; },
                                             azops_cli::TerminalProgressOptions{fds[1], redraw, std::chrono::milliseconds(5),
                                                                                std::chrono::seconds(10), "run_waa: "});
        progress.start();
        use(progress);
        progress.stop();
    }
    ::close(fds[1]);
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    return out;
}

}  // namespace

TEST_CASE("on a terminal the line is redrawn in place; into a pipe it is printed as plain lines") {
    const std::string line = "run_waa: benchmark 3/13  15%  ETA ?  $0.10";
    const std::string redrawn = printed(true, [](azops_cli::TerminalProgress&) {});
    CHECK(redrawn == "\r" + line + "\x1b[K\n");

    const std::string plain = printed(false, [](azops_cli::TerminalProgress&) {});
    CHECK(plain == line + "\n");  // once: nothing changed

    // A message goes above the line: the line is cleared, the message printed, the line drawn again.
    const std::string with_message = printed(true, [](azops_cli::TerminalProgress& p) { p.message("hello"); });
    CHECK(with_message.find("hello\n") != std::string::npos);
    CHECK(with_message.back() == '\n');
    CHECK(with_message.find("\r\x1b[Krun_waa: hello\n\r" + line + "\x1b[K") != std::string::npos);
    CHECK(printed(false, [](azops_cli::TerminalProgress& p) { p.message("hello"); }).find('\r') == std::string::npos);
}

TEST_CASE("a line longer than the terminal is cut between characters, never inside one") {
    CHECK(azops_cli::detail::first_columns("abc\xE2\x9D\xAF" "def", 4) == "abc\xE2\x9D\xAF");
    CHECK(azops_cli::detail::first_columns("abc\xE2\x9D\xAF" "def", 3) == "abc");
    CHECK(azops_cli::detail::first_columns("abc", 10) == "abc");
}

TEST_CASE("the programs' output on a pipe carries no carriage returns and no more lines than changes") {
    ScratchDir dir;
    const auto [code, out] = run_to_end({AZOPS_SETUP_WAA_PATH, "--simulate", "--speed", "1500", "--no-serve",
                                         "--status-file", (dir / "s.json").string(), "--history", ""});
    CHECK(code == 0);
    CHECK(out.find('\r') == std::string::npos);
    CHECK(out.find("\x1b[K") == std::string::npos);
    const auto lines = lines_of(out);
    CHECK(lines.size() < 60);
    bool saw_build = false;
    for (const auto& l : lines) saw_build |= l.rfind("docker_build ", 0) == 0 && l.find("ETA ") != std::string::npos;
    CHECK(saw_build);
}
