// Tests of azops/browser.hpp: a recording stub stands in for the browser.
#include <azops/browser.hpp>

#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

const std::string kUrl = "http://127.0.0.1:8765/";

// A stub browser: records its arguments, then becomes `sleep` so that it outlives open_browser.
class StubBrowser {
public:
    explicit StubBrowser(const azops_test::ScratchDir& dir, const std::string& name = "stub-browser")
        : path_(dir / name), record_(dir / (name + ".argv")) {
        std::ofstream script(path_);
        script << "#!/bin/sh\n"
               << "for arg in \"$@\"; do printf '%s\\n' \"$arg\"; done > '" << record_.string() << ".tmp'\n"
               << "mv '" << record_.string() << ".tmp' '" << record_.string() << "'\n"
               << "exec sleep 30\n";
        script.close();
        ::chmod(path_.c_str(), 0755);
    }

    const std::filesystem::path& path() const { return path_; }
    bool ran() const { return std::filesystem::exists(record_); }

    // The stub's arguments, once it has recorded them (waits at most 5 s).
    std::vector<std::string> argv() const {
        const auto give_up = SteadyClock::now() + 5s;
        while (!ran() && SteadyClock::now() < give_up) std::this_thread::sleep_for(5ms);
        std::vector<std::string> args;
        std::ifstream in(record_);
        for (std::string line; std::getline(in, line);) args.push_back(line);
        return args;
    }

private:
    std::filesystem::path path_;
    std::filesystem::path record_;
};

azops::BrowserEnvironment desktop(const std::string& browser) {
    azops::BrowserEnvironment env;
    env.browser = browser;
    env.display = ":0";
    return env;
}

std::string proc_text(pid_t pid, const char* what) { return azops_test::read_file("/proc/" + std::to_string(pid) + "/" + what); }

// Waits until `pid` has exec'ed sleep (the stub's last step).
bool became_sleep(pid_t pid) {
    const auto give_up = SteadyClock::now() + 5s;
    while (SteadyClock::now() < give_up) {
        if (proc_text(pid, "comm") == "sleep\n") return true;
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

// True once `pid` is gone: not running and not a zombie waiting to be reaped (kill(pid, 0)
// still succeeds on a zombie).
bool reaped(pid_t pid) {
    const auto give_up = SteadyClock::now() + 5s;
    while (SteadyClock::now() < give_up) {
        if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

}  // namespace

TEST_SUITE("browser") {

TEST_CASE("the browser starts detached: open_browser returns at once, argv is only the URL, no zombie is left") {
    azops_test::ScratchDir dir;
    StubBrowser stub(dir);
    const auto start = SteadyClock::now();
    const auto result = azops::open_browser(kUrl, true, desktop(stub.path().string()));
    const auto took = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();

    REQUIRE(result.opened());
    CHECK(result.outcome == azops::BrowserOutcome::opened);
    CHECK(took < 200);  // the stub lives for 30 s
    CHECK(result.pid > 0);
    CHECK(result.command == stub.path().string());
    CHECK(result.message.find("opened") != std::string::npos);
    CHECK(stub.argv() == std::vector<std::string>{kUrl});

    REQUIRE(::kill(result.pid, SIGTERM) == 0);
    CHECK(reaped(result.pid));
}

TEST_CASE("the browser gets its own session, /dev/null stdio, no inherited descriptors and SIGPIPE at its default") {
    azops_test::ScratchDir dir;
    StubBrowser stub(dir);
    int leak[2];
    REQUIRE(::pipe(leak) == 0);  // no O_CLOEXEC: a careless spawn would pass it on
    const auto previous = std::signal(SIGPIPE, SIG_IGN);  // as cpp-httplib's Server does
    const auto result = azops::open_browser(kUrl, true, desktop(stub.path().string()));
    std::signal(SIGPIPE, previous);
    ::close(leak[0]);
    ::close(leak[1]);
    REQUIRE(result.opened());
    REQUIRE(became_sleep(result.pid));

    std::set<std::string> fds;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(result.pid) + "/fd")) {
        fds.insert(entry.path().filename().string());
        CHECK(std::filesystem::read_symlink(entry.path()) == "/dev/null");
    }
    CHECK(fds == std::set<std::string>{"0", "1", "2"});

    const std::string status = proc_text(result.pid, "status");
    const auto at = status.find("SigIgn:\t");
    REQUIRE(at != std::string::npos);
    const unsigned long long ignored = std::stoull(status.substr(at + 8, 16), nullptr, 16);
    CHECK((ignored & (1ull << (SIGPIPE - 1))) == 0);

    const std::string stat = proc_text(result.pid, "stat");
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string state, ppid, pgrp, session;
    fields >> state >> ppid >> pgrp >> session;
    CHECK(session == std::to_string(result.pid));

    ::kill(result.pid, SIGTERM);
    CHECK(reaped(result.pid));
}

TEST_CASE("$BROWSER: %s is replaced by the URL, and a ':' list falls through to the first that starts") {
    azops_test::ScratchDir dir;
    StubBrowser stub(dir);
    const auto result = azops::open_browser(
        kUrl, true, desktop((dir / "no-such-browser").string() + ":" + stub.path().string() + " --new-window %s --app=%s"));
    REQUIRE(result.opened());
    CHECK(result.command == stub.path().string());
    CHECK(stub.argv() == std::vector<std::string>{"--new-window", kUrl, "--app=" + kUrl});
    ::kill(result.pid, SIGTERM);
    CHECK(reaped(result.pid));
}

TEST_CASE("no browser is started when not allowed, over SSH, or without a display") {
    azops_test::ScratchDir dir;
    StubBrowser stub(dir);
    const auto allowed_desktop = desktop(stub.path().string());

    auto ssh = allowed_desktop;
    ssh.ssh_connection = "203.0.113.7 50514 10.0.0.4 22";
    auto headless = allowed_desktop;
    headless.display.reset();

    const auto not_asked = azops::open_browser(kUrl, false, allowed_desktop);
    CHECK(not_asked.outcome == azops::BrowserOutcome::not_requested);
    const auto remote = azops::open_browser(kUrl, true, ssh);
    CHECK(remote.outcome == azops::BrowserOutcome::remote_session);
    CHECK(remote.message.find("SSH") != std::string::npos);
#if !defined(__APPLE__)
    const auto no_display = azops::open_browser(kUrl, true, headless);
    CHECK(no_display.outcome == azops::BrowserOutcome::no_display);
    CHECK(no_display.pid == -1);
#endif
    for (const auto& r : {not_asked, remote}) {
        CHECK_FALSE(r.opened());
        CHECK(r.pid == -1);
        CHECK_FALSE(r.message.empty());
    }
    CHECK_FALSE(stub.ran());
}

#if !defined(__APPLE__)
TEST_CASE("a Wayland session without DISPLAY still gets a browser") {
    azops_test::ScratchDir dir;
    StubBrowser stub(dir);
    auto wayland = desktop(stub.path().string());
    wayland.display.reset();
    wayland.wayland_display = "wayland-0";
    const auto result = azops::open_browser(kUrl, true, wayland);
    REQUIRE(result.opened());
    CHECK(stub.argv() == std::vector<std::string>{kUrl});
    ::kill(result.pid, SIGTERM);
    CHECK(reaped(result.pid));
}
#endif

TEST_CASE("a browser that cannot be started is reported, not thrown") {
    azops_test::ScratchDir dir;
    const auto result = azops::open_browser(kUrl, true, desktop((dir / "missing-browser").string()));
    CHECK(result.outcome == azops::BrowserOutcome::failed);
    CHECK(result.pid == -1);
    CHECK(result.message.find("missing-browser") != std::string::npos);
    CHECK(azops::open_browser(kUrl, true, desktop(":")).outcome == azops::BrowserOutcome::failed);
}

TEST_CASE("the environment is read from the process") {
    const auto env = azops::BrowserEnvironment::from_process();
    const char* display = std::getenv("DISPLAY");
    CHECK(env.display.has_value() == (display != nullptr && *display != '\0'));
}

}  // TEST_SUITE("browser")
