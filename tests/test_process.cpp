#include <azops/process.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <fstream>

#include "test_helpers.hpp"
#include <string>
#include <thread>

#include <sys/socket.h>

namespace {

struct Outcome {
    azops::ExitStatus status;
    std::string output;
};

Outcome run(const std::vector<std::string>& argv, azops::StopPolicy policy = {}) {
    auto child = azops::ChildProcess::spawn(argv);
    Outcome o;
    o.status = child.run([&](std::string_view bytes) { o.output.append(bytes); }, policy);
    return o;
}

// Gone, or a zombie waiting for init: either way it no longer runs. (Orphans are reaped by init,
// or by `azops` itself, which makes itself their subreaper.)
bool process_runs(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    const auto close = line.rfind(')');
    return close == std::string::npos || line.substr(close + 2, 1) != "Z";
}

}  // namespace

TEST_CASE("ChildProcess: output of stdout and stderr arrives merged, with the exit code") {
    const auto o = run({"sh", "-c", "echo out; echo err >&2; exit 3"});
    CHECK(o.status.code == 3);
    CHECK_FALSE(o.status.signal.has_value());
    CHECK(o.output.find("out\n") != std::string::npos);
    CHECK(o.output.find("err\n") != std::string::npos);
    CHECK(o.status.describe() == "exited with code 3");
}

TEST_CASE("ChildProcess: the output pipe holds 1 MiB, so a fast writer runs ahead of the reader") {
    const auto o = run({"python3", "-c", "import fcntl; print(fcntl.fcntl(1, fcntl.F_GETPIPE_SZ))"});
    CHECK(o.status.code == 0);
    CHECK(o.output == "1048576\n");
}

TEST_CASE("ChildProcess: a child killed by a signal reports 128+N") {
    const auto o = run({"sh", "-c", "kill -9 $$"});
    CHECK(o.status.code == 137);
    CHECK(o.status.signal == std::optional<int>(SIGKILL));
    CHECK(o.status.describe().rfind("killed by signal 9", 0) == 0);
}

TEST_CASE("ChildProcess: a command that does not exist is a clear error") {
    CHECK_THROWS_WITH_AS(azops::ChildProcess::spawn({"azops-no-such-command-xyz"}),
                         "command not found: azops-no-such-command-xyz", azops::SpawnError);
    CHECK_THROWS_WITH_AS(azops::ChildProcess::spawn({}), "no command given", azops::SpawnError);
}

TEST_CASE("ChildProcess: 10 MB on stdout and 10 MB on stderr, interleaved, arrive whole without deadlock") {
    const auto o = run({"sh", "-c", "head -c 10000000 /dev/zero & head -c 10000000 /dev/zero >&2; wait"});
    CHECK(o.status.code == 0);
    CHECK(o.output.size() == 20000000u);
}

TEST_CASE("ChildProcess: the child has only fds 0-2 and SIGPIPE at its default, even when we ignore it") {
    const auto previous = std::signal(SIGPIPE, SIG_IGN);
    int leaked[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, leaked) == 0);  // like a server's client socket, no CLOEXEC
    const auto o = run({"sh", "-c", "ls -1 /proc/$$/fd; grep SigIgn /proc/$$/status"});
    ::close(leaked[0]);
    ::close(leaked[1]);
    std::signal(SIGPIPE, previous);
    CHECK(o.output.rfind("0\n1\n2\nSigIgn:", 0) == 0);
    const auto ign = o.output.find("SigIgn:");
    REQUIRE(ign != std::string::npos);
    const unsigned long long mask = std::stoull(o.output.substr(ign + 7), nullptr, 16);
    CHECK((mask & (1ULL << (SIGPIPE - 1))) == 0);
}

TEST_CASE("ChildProcess: a stop reaches the whole process group and reaps it") {
    auto child = azops::ChildProcess::spawn({"sh", "-c", "sleep 300 & echo grandchild $!; sleep 300; wait"});
    std::string output;
    pid_t grandchild = 0;
    const auto status = child.run([&](std::string_view bytes) {
        output.append(bytes);
        const auto at = output.find("grandchild ");
        if (grandchild == 0 && at != std::string::npos && output.find('\n', at) != std::string::npos) {
            grandchild = std::stoi(output.substr(at + 11));
            child.request_stop();
        }
    });
    CHECK(status.stop_requested);
    CHECK(status.signal == std::optional<int>(SIGTERM));
    REQUIRE(grandchild > 0);
    CHECK(azops_test::eventually([&] { return !process_runs(grandchild); }));
}

TEST_CASE("ChildProcess: a child that ignores SIGTERM is killed after the grace period") {
    auto child = azops::ChildProcess::spawn({"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"});
    azops::StopPolicy policy;
    policy.grace = std::chrono::milliseconds(300);
    const auto status = child.run([&](std::string_view bytes) {
        if (bytes.find("ready") != std::string_view::npos) child.request_stop();
    }, policy);
    CHECK(status.stop_requested);
    CHECK(status.signal == std::optional<int>(SIGKILL));
}

TEST_CASE("ChildProcess: a stop requested from another thread, as a signal handler would") {
    auto child = azops::ChildProcess::spawn({"sh", "-c", "echo started; exec sleep 300"});
    std::thread stopper;
    const auto status = child.run([&](std::string_view) {
        if (!stopper.joinable()) stopper = std::thread([&child] { child.request_stop(); });
    });
    stopper.join();
    CHECK(status.stop_requested);
    CHECK(status.code == 128 + SIGTERM);
}

TEST_CASE("ChildProcess: a leftover process holding the pipe after the leader exits does not hang us") {
    azops::StopPolicy policy;
    policy.drain_after_exit = std::chrono::milliseconds(200);
    const auto start = std::chrono::steady_clock::now();
    const auto o = run({"sh", "-c", "sleep 300 & echo leader done; exit 0"}, policy);
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(o.status.code == 0);
    CHECK(o.output == "leader done\n");
    CHECK(took < std::chrono::seconds(60));
}

TEST_CASE("ChildProcess: destroying an unfinished child kills and reaps it") {
    pid_t pid = 0;
    {
        auto child = azops::ChildProcess::spawn({"sleep", "300"});
        pid = child.pid();
        CHECK(process_runs(pid));
    }
    CHECK_FALSE(process_runs(pid));
}
