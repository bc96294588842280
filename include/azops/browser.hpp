// azops/browser.hpp — opening the dashboard in the user's browser, unless told not to.
//
// Owns: the decision whether to open a browser at all (not when told not to, not over SSH, not on
// Linux without a graphical display) and starting it: $BROWSER (a ':'-separated list of commands,
// "%s" standing for the URL, else the URL appended), or xdg-open / open. The browser runs detached
// (its own session, stdio on /dev/null, SIGPIPE and the other signals at their defaults, no file
// descriptor above 2 inherited) and is reaped by a thread of its own, so the caller never waits for
// it and no zombie is left. The URL is the only argument given: the run token is never put on a
// command line, where other local users could read it (the page carries it).
// Thread-safety: open_browser may be called from any thread; BrowserEnvironment::from_process reads
// the environment, which must not be changed concurrently.
// Errors: nothing throws; the result says what happened, with a line to show the user.
#pragma once

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <azops/process.hpp>

namespace azops {

enum class BrowserOutcome {
    opened,          // a browser (or opener) was started
    not_requested,   // the caller said not to (--no-open)
    remote_session,  // SSH_CONNECTION is set: a browser here would open on the wrong machine
    no_display,      // Linux without DISPLAY or WAYLAND_DISPLAY
    failed,          // every candidate failed to start
};

// The environment variables the decision depends on; tests pass their own.
struct BrowserEnvironment {
    std::optional<std::string> browser;          // $BROWSER
    std::optional<std::string> display;          // $DISPLAY
    std::optional<std::string> wayland_display;  // $WAYLAND_DISPLAY
    std::optional<std::string> ssh_connection;   // $SSH_CONNECTION

    static BrowserEnvironment from_process() {
        const auto get = [](const char* name) -> std::optional<std::string> {
            const char* value = std::getenv(name);
            if (value == nullptr || *value == '\0') return std::nullopt;
            return std::string(value);
        };
        return {get("BROWSER"), get("DISPLAY"), get("WAYLAND_DISPLAY"), get("SSH_CONNECTION")};
    }
};

struct BrowserResult {
    BrowserOutcome outcome = BrowserOutcome::failed;
    std::string command;  // the program started (or the last one tried)
    pid_t pid = -1;       // the started process, when opened
    std::string message;  // one line for the user, e.g. "opened the dashboard with xdg-open"

    bool opened() const noexcept { return outcome == BrowserOutcome::opened; }
};

namespace detail {

// One $BROWSER entry as argv: split on blanks, every "%s" replaced by the URL, or the URL appended.
inline std::vector<std::string> browser_argv(std::string_view command, const std::string& url) {
    std::vector<std::string> argv;
    bool substituted = false;
    std::size_t at = 0;
    while (at < command.size()) {
        const auto start = command.find_first_not_of(" \t", at);
        if (start == std::string_view::npos) break;
        const auto end = std::min(command.find_first_of(" \t", start), command.size());
        std::string word(command.substr(start, end - start));
        for (auto pos = word.find("%s"); pos != std::string::npos; pos = word.find("%s", pos + url.size())) {
            word.replace(pos, 2, url);
            substituted = true;
        }
        argv.push_back(std::move(word));
        at = end;
    }
    if (!argv.empty() && !substituted) argv.push_back(url);
    return argv;
}

inline std::vector<std::vector<std::string>> browser_candidates(const BrowserEnvironment& env, const std::string& url) {
    std::vector<std::vector<std::string>> candidates;
    if (env.browser) {
        std::string_view list = *env.browser;
        while (!list.empty()) {
            const auto colon = std::min(list.find(':'), list.size());
            auto argv = browser_argv(list.substr(0, colon), url);
            if (!argv.empty()) candidates.push_back(std::move(argv));
            list.remove_prefix(std::min(colon + 1, list.size()));
        }
        return candidates;
    }
#if defined(__APPLE__)
    candidates.push_back({"open", url});
#else
    candidates.push_back({"xdg-open", url});
#endif
    return candidates;
}

// Starts argv detached; returns its pid, or the error of posix_spawnp.
inline int spawn_detached(const std::vector<std::string>& argv, pid_t& pid) {
    SpawnSetup setup;
    posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&setup.actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&setup.actions, 2, "/dev/null", O_WRONLY, 0);
    short flags = setup.reset_signals();
#if defined(__APPLE__)
    flags |= POSIX_SPAWN_CLOEXEC_DEFAULT;
#else
    posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);
#endif
#if defined(POSIX_SPAWN_SETSID)
    flags |= POSIX_SPAWN_SETSID;  // Ctrl-C in our terminal must not reach the browser
#else
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&setup.attr, 0);
#endif
    posix_spawnattr_setflags(&setup.attr, flags);
    std::vector<char*> args = c_argv(argv);
    return posix_spawnp(&pid, args[0], &setup.actions, &setup.attr, args.data(), environ);
}

// A browser may run for hours; a thread of its own waits for it so it never lingers as a zombie.
inline void reap_in_background(pid_t pid) noexcept {
    try {
        std::thread([pid] {
            while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
            }
        }).detach();
    } catch (const std::system_error&) {
        // No thread to spare: the child is reaped with the process, as a zombie until then.
    }
}

}  // namespace detail

// Opens `url` in a browser when `allowed` and this session can show one; never blocks.
inline BrowserResult open_browser(const std::string& url, bool allowed, const BrowserEnvironment& env) {
    BrowserResult result;
    if (!allowed) {
        result.outcome = BrowserOutcome::not_requested;
        result.message = "not opening a browser (as asked)";
        return result;
    }
    if (env.ssh_connection) {
        result.outcome = BrowserOutcome::remote_session;
        result.message = "not opening a browser: this is an SSH session (forward the port, e.g. ssh -L)";
        return result;
    }
#if !defined(__APPLE__)
    if (!env.display && !env.wayland_display) {
        result.outcome = BrowserOutcome::no_display;
        result.message = "not opening a browser: no graphical display (DISPLAY and WAYLAND_DISPLAY are unset)";
        return result;
    }
#endif
    std::string errors;
    for (const auto& argv : detail::browser_candidates(env, url)) {
        result.command = argv.front();
        pid_t pid = -1;
        const int err = detail::spawn_detached(argv, pid);
        if (err == 0) {
            detail::reap_in_background(pid);
            result.outcome = BrowserOutcome::opened;
            result.pid = pid;
            result.message = "opened the dashboard with " + argv.front();
            return result;
        }
        errors += (errors.empty() ? "" : "; ") + argv.front() + ": " + std::generic_category().message(err);
    }
    result.outcome = BrowserOutcome::failed;
    result.message = "could not start a browser (" + (errors.empty() ? std::string("$BROWSER is empty") : errors) + ")";
    return result;
}

inline BrowserResult open_browser(const std::string& url, bool allowed) {
    return open_browser(url, allowed, BrowserEnvironment::from_process());
}

}  // namespace azops
