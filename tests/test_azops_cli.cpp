// End to end: the real `azops` binary on real child processes, checked through the status file.
#include <azops/process.hpp>
#include <azops/status.hpp>

#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <csignal>

using azops_test::read_file;
using azops_test::ScratchDir;

namespace {

struct CliRun {
    azops::ExitStatus status;
    std::string output;
};

CliRun azops_cli(std::vector<std::string> args) {
    args.insert(args.begin(), AZOPS_CLI_PATH);
    auto child = azops::ChildProcess::spawn(args);
    CliRun r;
    r.status = child.run([&](std::string_view bytes) { r.output.append(bytes); });
    return r;
}

azops::OpsStatus status_at(const std::filesystem::path& path) {
    const auto parsed = azops::parse_status(read_file(path));
    REQUIRE_MESSAGE(parsed.status.has_value(), std::string(parsed.error + ": " + read_file(path)));
    return *parsed.status;
}

}  // namespace

TEST_CASE("azops run: exits with the command's code and leaves state failed with its output") {
    ScratchDir dir;
    const auto status_file = dir / "s.json";
    const auto r = azops_cli({"run", "--no-serve", "--status-file", status_file.string(), "--", "sh", "-c",
                              "echo hi; exit 3"});
    CHECK(r.status.code == 3);
    CHECK(r.output.find("hi\n") != std::string::npos);  // echoed to the terminal
    const auto s = status_at(status_file);
    CHECK(s.state == "failed");
    CHECK(s.error == std::optional<std::string>("the command exited with code 3"));
    CHECK(std::find(s.log_tail.begin(), s.log_tail.end(), "hi") != s.log_tail.end());
}

TEST_CASE("azops run: a successful command ends succeeded at 100 %") {
    ScratchDir dir;
    const auto status_file = dir / "s.json";
    const auto r = azops_cli({"run", "--no-serve", "--no-open", "--task", "demo", "--operation", "docker_install",
                              "--vm-size", "Standard_D8ds_v5", "--status-file", status_file.string(), "--", "printf",
                              "one\\ntwo\\nno newline at the end"});
    CHECK(r.status.code == 0);
    const auto s = status_at(status_file);
    CHECK(s.state == "succeeded");
    CHECK(s.task == "demo");
    CHECK(s.operation == "docker_install");
    CHECK(s.vm_size == std::optional<std::string>("Standard_D8ds_v5"));
    CHECK(s.progress_pct == 100.0);
    CHECK(s.log_tail == std::vector<std::string>{"one", "two", "no newline at the end"});
    CHECK_FALSE(std::filesystem::exists(dir / "s.json.token"));
}

TEST_CASE("azops run: a command that succeeds is recorded in history beside the status file, or where --history says") {
    ScratchDir dir;
    const auto status_file = dir / "s.json";
    const std::vector<std::string> command = {"--", "sh", "-c", "echo 'Step 1/2 : FROM alpine'; echo 'Step 2/2 : RUN true'; "
                                                              "echo 'Successfully built 0123456789ab'"};
    const auto run_with = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {"run", "--no-serve", "--operation", "docker_build", "--status-file", status_file.string()});
        args.insert(args.end(), command.begin(), command.end());
        return azops_cli(args);
    };
    CHECK(run_with({}).status.code == 0);
    const auto beside = nlohmann::json::parse(read_file(dir / "azure_ops_history.json"));
    CHECK(beside["docker_build"]["samples"] == 1);
    CHECK(beside["docker_build"]["recent_runs"].back()["steps"].size() == 2);

    CHECK(run_with({"--history", (dir / "elsewhere.json").string()}).status.code == 0);
    CHECK(nlohmann::json::parse(read_file(dir / "elsewhere.json"))["docker_build"]["samples"] == 1);

    std::filesystem::remove(dir / "azure_ops_history.json");
    CHECK(run_with({"--history", ""}).status.code == 0);
    CHECK_FALSE(std::filesystem::exists(dir / "azure_ops_history.json"));
}

TEST_CASE("azops run: a command killed by a signal exits 128+N, state failed") {
    ScratchDir dir;
    const auto status_file = dir / "s.json";
    const auto r = azops_cli({"run", "--no-serve", "--status-file", status_file.string(), "--", "sh", "-c", "kill -9 $$"});
    CHECK(r.status.code == 137);
    const auto s = status_at(status_file);
    CHECK(s.state == "failed");
    REQUIRE(s.error.has_value());
    CHECK(s.error->find("killed by signal 9") != std::string::npos);
}

TEST_CASE("azops run: a command that does not exist gives a clear error and state failed") {
    ScratchDir dir;
    const auto status_file = dir / "s.json";
    const auto r = azops_cli({"run", "--no-serve", "--status-file", status_file.string(), "--", "azops-no-such-cmd"});
    CHECK(r.status.code == 127);
    CHECK(r.output.find("azops: command not found: azops-no-such-cmd") != std::string::npos);
    const auto s = status_at(status_file);
    CHECK(s.state == "failed");
    CHECK(s.error == std::optional<std::string>("command not found: azops-no-such-cmd"));
}

TEST_CASE("azops run: SIGTERM stops the command's whole group, reaps it, and ends cancelled") {
    ScratchDir dir;
    const auto status_file = dir / "s.json";
    auto child = azops::ChildProcess::spawn({AZOPS_CLI_PATH, "run", "--no-serve", "--status-file", status_file.string(),
                                             "--", "sh", "-c", "sleep 300 & echo pid $!; sleep 300"});
    std::string output;
    pid_t grandchild = 0;
    const auto status = child.run([&](std::string_view bytes) {
        output.append(bytes);
        const auto at = output.find("pid ");
        if (grandchild == 0 && at != std::string::npos && output.find('\n', at) != std::string::npos) {
            grandchild = std::stoi(output.substr(at + 4));
            ::kill(child.pid(), SIGTERM);  // to azops only: it must stop the group itself
        }
    });
    CHECK(status.code == 128 + SIGTERM);  // the command's code: killed by SIGTERM
    REQUIRE(grandchild > 0);
    CHECK((::kill(grandchild, 0) != 0 && errno == ESRCH));
    const auto s = status_at(status_file);
    CHECK(s.state == "cancelled");
    REQUIRE(s.error.has_value());
    CHECK(s.error->find("stopped on request") != std::string::npos);
}

TEST_CASE("azops run: without a command it explains the usage and fails") {
    const auto r = azops_cli({"run", "--no-serve"});
    CHECK(r.status.code != 0);
    CHECK(r.output.find("command is required") != std::string::npos);
}

TEST_CASE("azops run: an unwritable status folder is a clear error") {
    const auto r = azops_cli({"run", "--no-serve", "--status-file", "/proc/azops-nope/s.json", "--", "true"});
    CHECK(r.status.code == 125);
    CHECK(r.output.find("azops: ") != std::string::npos);
}

TEST_CASE("azops run: a failed docker build inside a command that exits 0 ends failed with the builder's error") {
    ScratchDir dir;
    const auto status_file = dir / "s.json";
    const auto r = azops_cli({"run", "--no-serve", "--status-file", status_file.string(), "--", "cat",
                              std::string(AZOPS_TEST_DATA_DIR) + "/docker/buildkit_failed.log"});
    CHECK(r.status.code == 0);  // cat's own exit code
    const auto s = status_at(status_file);
    CHECK(s.state == "failed");
    CHECK(s.operation == "docker_build");
    CHECK(s.step == 4);
    CHECK(s.total_steps == 12);
    REQUIRE(s.error.has_value());
    CHECK(s.error->rfind("failed to solve: process \"/bin/sh -c python3", 0) == 0);
}

TEST_CASE("azops parse docker|boot|waa: a file, standard input, and a file that cannot be read") {
    const std::string data = AZOPS_TEST_DATA_DIR;
    auto r = azops_cli({"parse", "docker", data + "/docker/buildkit_waa.log"});
    CHECK(r.status.code == 0);
    CHECK(r.output.find("\"outcome\":\"succeeded\"") != std::string::npos);
    r = azops_cli({"parse", "docker", data + "/docker/legacy_failed.log"});
    CHECK(r.status.code == 1);
    r = azops_cli({"parse", "boot", data + "/boot/no_free_space.log"});
    CHECK(r.status.code == 1);
    r = azops_cli({"parse", "waa", data + "/waa/small_run.log"});
    CHECK(r.status.code == 0);
    r = azops_cli({"parse", "docker", "/nonexistent/build.log"});
    CHECK(r.status.code == 2);
    CHECK(r.output.find("azops: cannot open /nonexistent/build.log") != std::string::npos);
    r = azops_cli({"parse", "docker", "-"});  // stdin is /dev/null: an empty log
    CHECK(r.status.code == 0);
}
