#include <azops/azure.hpp>

#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef AZOPS_FAKE_AZ_PATH
#error "define AZOPS_FAKE_AZ_PATH as the absolute path of tests/fake_az/az"
#endif

namespace {

using namespace std::chrono_literals;

const azops::AzureVm test_vm{"openadapt-agents", "waa-eval-vm"};
const std::string unexpected_prefix = "az printed something unexpected: ";

std::string recording(const std::string& name) {
    return azops_test::read_file(std::string(AZOPS_TEST_DATA_DIR) + "/az/" + name);
}

struct FakeAz {
    std::string scenario = "running";
    std::string log;
    std::string state_file;
    std::chrono::milliseconds timeout = 30s;

    azops::AzCli cli() const {
        azops::AzCliOptions options;
        options.path = AZOPS_FAKE_AZ_PATH;
        options.timeout = timeout;
        // Set even when empty, so variables from the shell that runs the tests cannot leak in.
        options.environment = {{"AZOPS_FAKE_AZ_SCENARIO", scenario},
                               {"AZOPS_FAKE_AZ_LOG", log},
                               {"AZOPS_FAKE_AZ_STATE_FILE", state_file}};
        return azops::AzCli(options);
    }
};

azops::AzCli fake_az(const std::string& scenario) {
    FakeAz fake;
    fake.scenario = scenario;
    return fake.cli();
}

// The fake reads the file while the test rewrites it: replace it whole.
void set_scenario(const std::filesystem::path& state_file, const std::string& scenario) {
    const auto next = state_file.string() + ".next";
    azops_test::write_file(next, scenario + "\n");
    std::filesystem::rename(next, state_file);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Collects what a poller delivers; a test waits on it instead of sleeping.
class Recorder {
public:
    void add(const azops::AzureVmStatus& status) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            seen_.push_back(status);
        }
        changed_.notify_all();
    }

    // The first status in `state` at index `from` or later; nullopt after a limit long enough for any
    // working machine, so a broken poller fails the test rather than hanging it.
    std::optional<azops::AzureVmStatus> wait_for_state(const std::string& state, std::size_t from = 0) {
        std::unique_lock<std::mutex> lock(mutex_);
        std::optional<azops::AzureVmStatus> found;
        changed_.wait_for(lock, 30s, [&] {
            for (std::size_t i = from; i < seen_.size() && !found; ++i) {
                if (seen_[i].state == state) found = seen_[i];
            }
            return found.has_value();
        });
        return found;
    }

    bool wait_for_count(std::size_t count) {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, 30s, [&] { return seen_.size() >= count; });
    }

    std::size_t count() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return seen_.size();
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<azops::AzureVmStatus> seen_;
};

// A TCP socket bound to an ephemeral loopback port, listening or not.
class LoopbackSocket {
public:
    explicit LoopbackSocket(bool listening) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = 0;
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        if (listening) REQUIRE(::listen(fd_, 4) == 0);
        socklen_t length = sizeof address;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
        port_ = ntohs(address.sin_port);
    }
    ~LoopbackSocket() { close(); }
    LoopbackSocket(const LoopbackSocket&) = delete;
    LoopbackSocket& operator=(const LoopbackSocket&) = delete;

    int port() const { return port_; }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
    int port_ = 0;
};

}  // namespace

TEST_CASE("vm_state_from_power_code: every spelling az uses, and nothing else") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"PowerState/running", "running"},
        {"PowerState/starting", "starting"},
        {"PowerState/stopping", "stopping"},
        {"PowerState/stopped", "stopped"},
        {"PowerState/deallocating", "deallocating"},
        {"PowerState/deallocated", "deallocated"},
        {"PowerState/unknown", "unknown"},
        {"VM running", "running"},
        {"VM deallocated", "deallocated"},
        {"VM Stopping", "stopping"},
        {"deallocating", "deallocating"},
        {" VM stopped ", "stopped"},
        {"", "unknown"},
        {"PowerState/", "unknown"},
        {"PowerState/hibernated", "unknown"},
        {"VM runningX", "unknown"},
        {"ProvisioningState/succeeded", "unknown"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.first);
        CHECK(azops::vm_state_from_power_code(c.first) == c.second);
    }
}

TEST_CASE("parse_instance_view: each recorded power state, with size, region and name") {
    for (const std::string state : {"running", "starting", "stopped", "deallocating", "deallocated"}) {
        CAPTURE(state);
        const auto status = azops::parse_instance_view(recording("instance_view_" + state + ".json"));
        CHECK(status.state == state);
        CHECK_FALSE(status.error.has_value());
        CHECK(status.size == std::optional<std::string>("Standard_D8ds_v5"));
        CHECK(status.region == std::optional<std::string>("eastus"));
        CHECK(status.name == std::optional<std::string>("waa-eval-vm"));
        CHECK_FALSE(status.ip.has_value());  // the instance view never carries addresses
    }
}

TEST_CASE("parse_instance_view: a VM still being created has no power state yet, and that is no error") {
    const auto status = azops::parse_instance_view(recording("instance_view_creating.json"));
    CHECK(status.state == "unknown");
    CHECK_FALSE(status.error.has_value());
    CHECK(status.size == std::optional<std::string>("Standard_D8ds_v5"));
}

TEST_CASE("parse_instance_view: entries of the wrong type are skipped, not thrown on") {
    const auto status = azops::parse_instance_view(
        R"({"instanceView": {"statuses": [1, "x", null, {"code": 5}, {"code": "PowerState/stopping"}]},
            "hardwareProfile": "oops", "location": 7, "name": null})");
    CHECK(status.state == "stopping");
    CHECK_FALSE(status.error.has_value());
    CHECK_FALSE(status.size.has_value());
    CHECK_FALSE(status.region.has_value());
    CHECK_FALSE(status.name.has_value());
}

TEST_CASE("parse_vm_show: each recorded power state — the public IP only while allocated") {
    const std::vector<std::pair<std::string, bool>> states = {
        {"running", true}, {"starting", true}, {"stopped", true}, {"deallocating", false}, {"deallocated", false}};
    for (const auto& entry : states) {
        const std::string& state = entry.first;
        CAPTURE(entry.first);
        const bool has_ip = entry.second;
        const auto status = azops::parse_vm_show(recording("show_d_" + state + ".json"));
        CHECK(status.state == state);
        CHECK_FALSE(status.error.has_value());
        CHECK(status.ip == (has_ip ? std::optional<std::string>("203.0.113.47") : std::nullopt));
        CHECK(status.size == std::optional<std::string>("Standard_D8ds_v5"));
        CHECK(status.region == std::optional<std::string>("eastus"));
        CHECK(status.name == std::optional<std::string>("waa-eval-vm"));
    }
}

TEST_CASE("parse_vm_show: several public IPs give the first — a null powerState is unknown") {
    const auto status = azops::parse_vm_show(
        R"({"powerState": null, "publicIps": " 203.0.113.47 ,203.0.113.48", "location": "westus2"})");
    CHECK(status.state == "unknown");
    CHECK_FALSE(status.error.has_value());
    CHECK(status.ip == std::optional<std::string>("203.0.113.47"));
    CHECK(status.region == std::optional<std::string>("westus2"));
}

TEST_CASE("parse_vm_create: IP, state, region, and the name taken from the id") {
    const auto status = azops::parse_vm_create(recording("create_running.json"));
    CHECK(status.state == "running");
    CHECK_FALSE(status.error.has_value());
    CHECK(status.ip == std::optional<std::string>("203.0.113.47"));
    CHECK(status.region == std::optional<std::string>("eastus"));
    CHECK(status.name == std::optional<std::string>("waa-eval-vm"));
    CHECK_FALSE(status.size.has_value());

    const auto no_ip = azops::parse_vm_create(R"({"powerState": "VM running", "publicIpAddress": ""})");
    CHECK_FALSE(no_ip.ip.has_value());
    CHECK(no_ip.state == "running");
}

TEST_CASE("parsers: output that is not the command's JSON gives state unknown and says what az printed") {
    using Parser = azops::AzureVmStatus (*)(std::string_view);
    const std::vector<std::pair<const char*, Parser>> parsers = {{"instance view", azops::parse_instance_view},
                                                                 {"show -d", azops::parse_vm_show},
                                                                 {"create", azops::parse_vm_create}};
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"", "(nothing)"},
        {"  \n", "(nothing)"},
        {"not json", "not json"},
        {"[]", "[]"},
        {"{}", "{}"},
        {"null", "null"},
        {"{\"powerState\": \"VM running\"", "{\"powerState\": \"VM running\""},  // cut short
        {"line one\n  line\ttwo\x01\n", "line one line two"},
    };
    for (const auto& parser : parsers) {
        for (const auto& c : cases) {
            CAPTURE(parser.first);
            CAPTURE(c.first);
            const auto status = parser.second(c.first);
            CHECK(status.state == "unknown");
            CHECK(status.error == std::optional<std::string>(unexpected_prefix + c.second));
        }
    }
    // The other command's JSON is not this command's JSON.
    const auto swapped = azops::parse_vm_show(recording("instance_view_running.json"));
    CHECK(swapped.state == "unknown");
    REQUIRE(swapped.error.has_value());
    CHECK(swapped.error->rfind(unexpected_prefix + "{ \"additionalCapabilities\": null,", 0) == 0);
    CHECK(azops::parse_instance_view(recording("create_running.json")).error.has_value());
}

TEST_CASE("parsers: what az printed is cut at 200 characters, never inside a UTF-8 sequence") {
    const auto ascii = azops::parse_vm_show(std::string(300, 'x'));
    CHECK(ascii.error == std::optional<std::string>(unexpected_prefix + std::string(200, 'x') + "\xE2\x80\xA6"));

    std::string accents;
    for (int i = 0; i < 250; ++i) accents += "\xC3\xA9";  // é
    std::string expected;
    for (int i = 0; i < 200; ++i) expected += "\xC3\xA9";
    const auto wide = azops::parse_instance_view(accents);
    CHECK(wide.error == std::optional<std::string>(unexpected_prefix + expected + "\xE2\x80\xA6"));

    const auto invalid = azops::parse_vm_show("\xFF{\x1B[31m");
    CHECK(invalid.error == std::optional<std::string>(unexpected_prefix + "\xEF\xBF\xBD{ [31m"));

    const auto exact = azops::parse_vm_create(std::string(200, 'y'));
    CHECK(exact.error == std::optional<std::string>(unexpected_prefix + std::string(200, 'y')));
}

TEST_CASE("AzCli::vm_status: state from the instance view, IP from show -d, exactly those two commands") {
    azops_test::ScratchDir dir;
    FakeAz fake;
    fake.log = (dir / "az.log").string();
    const auto status = fake.cli().vm_status(test_vm);
    CHECK(status.state == "running");
    CHECK_FALSE(status.error.has_value());
    CHECK(status.ip == std::optional<std::string>("203.0.113.47"));
    CHECK(status.size == std::optional<std::string>("Standard_D8ds_v5"));
    CHECK(status.region == std::optional<std::string>("eastus"));
    CHECK(status.name == std::optional<std::string>("waa-eval-vm"));
    CHECK(azops_test::read_file(fake.log) ==
          "vm get-instance-view -g openadapt-agents -n waa-eval-vm -o json\n"
          "vm show -d -g openadapt-agents -n waa-eval-vm -o json\n");
}

TEST_CASE("AzCli::vm_status: every recorded state through the fake az") {
    for (const std::string state : {"starting", "stopped", "deallocating", "deallocated"}) {
        CAPTURE(state);
        const auto status = fake_az(state).vm_status(test_vm);
        CHECK(status.state == state);
        CHECK_FALSE(status.error.has_value());
        const bool allocated = state == "starting" || state == "stopped";
        CHECK(status.ip.has_value() == allocated);
    }
}

TEST_CASE("AzCli::vm_status: when only show -d fails, the state stands without an IP") {
    const auto status = fake_az("show_fails").vm_status(test_vm);
    CHECK(status.state == "running");
    CHECK_FALSE(status.error.has_value());
    CHECK_FALSE(status.ip.has_value());
    CHECK(status.size == std::optional<std::string>("Standard_D8ds_v5"));
}

TEST_CASE("AzCli::vm_status: each failure is state unknown with one clear message") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"not_logged_in", "not logged in to Azure (or the login expired): run 'az login', then try again"},
        {"not_found", "VM 'waa-eval-vm' was not found in resource group 'openadapt-agents' (ResourceNotFound)"},
        {"group_not_found", "resource group 'openadapt-agents' was not found (ResourceGroupNotFound)"},
        {"garbage", unexpected_prefix +
                        "Name ResourceGroup Location Zones ----------- ---------------- ---------- ------- "
                        "waa-eval-vm openadapt-agents eastus"},
        {"unexpected", unexpected_prefix + "[]"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.first);
        const auto status = fake_az(c.first).vm_status(test_vm);
        CHECK(status.state == "unknown");
        CHECK(status.error == std::optional<std::string>(c.second));
        CHECK_FALSE(status.ip.has_value());
    }
}

TEST_CASE("AzCli::vm_status: az that does not answer in time is stopped, state unknown") {
    FakeAz fake;
    fake.scenario = "slow";  // sleeps 30 s
    fake.timeout = 300ms;
    const auto start = std::chrono::steady_clock::now();
    const auto status = fake.cli().vm_status(test_vm);
    CHECK(seconds_since(start) < 10.0);
    CHECK(status.state == "unknown");
    CHECK(status.error == std::optional<std::string>(
                              "az did not answer within 300 ms and was stopped; check the network, or run the same "
                              "az command by hand"));

    fake.timeout = 1s;
    const auto run = fake.cli().run({"vm", "list"});
    CHECK(run.failure == azops::AzFailure::timed_out);
    CHECK(run.exit_code == -1);
    CHECK(run.error->find("within 1 s ") != std::string::npos);
}

TEST_CASE("AzCli: az missing, or not executable, is a clear message") {
    CHECK(azops::detail::az::missing_message("az") ==
          "the Azure CLI (az) was not found on PATH; install it or pass --az PATH");

    azops::AzCliOptions bare;
    bare.path = "azops-test-no-such-az";
    const auto by_name = azops::AzCli(bare).vm_status(test_vm);
    CHECK(by_name.state == "unknown");
    CHECK(by_name.error == std::optional<std::string>(
                               "the Azure CLI (azops-test-no-such-az) was not found on PATH; install it or pass --az PATH"));

    azops::AzCliOptions missing_path;
    missing_path.path = "/nonexistent/bin/az";
    const auto by_path = azops::AzCli(missing_path).run({"version"});
    CHECK(by_path.failure == azops::AzFailure::cannot_start);
    CHECK(by_path.error == std::optional<std::string>(
                               "the Azure CLI was not found at /nonexistent/bin/az; install it or pass --az PATH"));

    azops_test::ScratchDir dir;
    const auto not_executable = (dir / "az").string();
    azops_test::write_file(not_executable, "#!/bin/sh\necho {}\n");
    ::chmod(not_executable.c_str(), 0644);
    azops::AzCliOptions plain_file;
    plain_file.path = not_executable;
    const auto status = azops::AzCli(plain_file).vm_status(test_vm);
    CHECK(status.state == "unknown");
    CHECK(status.error == std::optional<std::string>("the Azure CLI at " + not_executable +
                                                     " cannot be run (permission denied); install it or pass --az PATH"));
}

TEST_CASE("AzCli::vm_status: no resource group or no VM name is said before az runs") {
    azops_test::ScratchDir dir;
    FakeAz fake;
    fake.log = (dir / "az.log").string();
    for (const azops::AzureVm& vm : {azops::AzureVm{"", "waa-eval-vm"}, azops::AzureVm{"openadapt-agents", ""}}) {
        const auto status = fake.cli().vm_status(vm);
        CHECK(status.state == "unknown");
        CHECK(status.error ==
              std::optional<std::string>("no VM given: both the resource group and the VM name are needed"));
    }
    CHECK_FALSE(std::filesystem::exists(fake.log));
}

TEST_CASE("AzCli::run: stdout and stderr apart — a failure's message skips az's warnings") {
    const auto unknown = fake_az("running").run({"vm", "list"});
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.failure == azops::AzFailure::exited);
    CHECK(unknown.stdout_text.empty());
    CHECK(unknown.error == std::optional<std::string>("az exited with code 2: the fake az does not know 'az vm list'"));

    const auto quota = fake_az("quota").run({"vm", "list"});
    CHECK(quota.exit_code == 1);
    REQUIRE(quota.error.has_value());
    CHECK(quota.error->rfind("az exited with code 1: (QuotaExceeded) Operation could not be completed", 0) == 0);
    CHECK(quota.stderr_text.rfind("WARNING: ", 0) == 0);

    const auto not_found = fake_az("not_found").run({"vm", "show", "-d"});
    CHECK(not_found.failure == azops::AzFailure::not_found);
    CHECK(not_found.error->rfind("not found on Azure: (ResourceNotFound) The Resource", 0) == 0);

    const auto ok = fake_az("running").run({"vm", "deallocate"});
    CHECK(ok.ok());
    CHECK(ok.exit_code == 0);
    CHECK_FALSE(ok.error.has_value());
}

TEST_CASE("AzCli::run: a non-zero exit with nothing on stderr still says so") {
    azops_test::ScratchDir dir;
    const auto script = (dir / "az").string();
    azops_test::write_file(script, "#!/bin/sh\necho 'WARNING: only a warning' >&2\nexit 4\n");
    ::chmod(script.c_str(), 0755);
    azops::AzCliOptions options;
    options.path = script;
    const auto result = azops::AzCli(options).run({"vm", "show"});
    CHECK(result.error == std::optional<std::string>("az exited with code 4 and printed no error"));
}

TEST_CASE("AzCli::run: az that exits while something it started holds its output is not waited for") {
    azops_test::ScratchDir dir;
    const auto script = (dir / "az").string();
    azops_test::write_file(script, "#!/bin/sh\nsleep 30 &\necho '{\"powerState\": \"VM running\"}'\n");
    ::chmod(script.c_str(), 0755);
    azops::AzCliOptions options;
    options.path = script;
    const auto start = std::chrono::steady_clock::now();
    const auto result = azops::AzCli(options).run({"vm", "show", "-d"});
    CHECK(seconds_since(start) < 10.0);
    CHECK(result.ok());
    CHECK(azops::parse_vm_show(result.stdout_text).state == "running");
}

TEST_CASE("AzCli::run: a cancelled token stops az before it starts") {
    azops_test::ScratchDir dir;
    FakeAz fake;
    fake.log = (dir / "az.log").string();
    azops::AzCancelToken token;
    CHECK_FALSE(token.cancelled());
    token.cancel();
    CHECK(token.cancelled());
    const auto result = fake.cli().run({"vm", "list"}, std::nullopt, &token);
    CHECK(result.failure == azops::AzFailure::cancelled);
    CHECK(result.error == std::optional<std::string>("az was stopped before it answered"));
    CHECK_FALSE(std::filesystem::exists(fake.log));
}

TEST_CASE("AzCli::deallocate: runs `az vm deallocate --no-wait`, never `az vm stop`") {
    azops_test::ScratchDir dir;
    FakeAz fake;
    fake.log = (dir / "az.log").string();
    const auto result = fake.cli().deallocate(test_vm);
    CHECK(result.ok());
    CHECK(result.exit_code == 0);
    const auto log = azops_test::read_file(fake.log);
    CHECK(log == "vm deallocate -g openadapt-agents -n waa-eval-vm --no-wait\n");
    CHECK(log.find("vm stop") == std::string::npos);
}

TEST_CASE("AzCli::deallocate: failures name the VM or ask for a login") {
    const auto not_found = fake_az("not_found").deallocate(test_vm);
    CHECK(not_found.failure == azops::AzFailure::not_found);
    CHECK(not_found.exit_code == 3);
    CHECK(not_found.error ==
          std::optional<std::string>("VM 'waa-eval-vm' was not found in resource group 'openadapt-agents' (ResourceNotFound)"));

    const auto logged_out = fake_az("not_logged_in").deallocate(test_vm);
    CHECK(logged_out.failure == azops::AzFailure::not_logged_in);
    CHECK(logged_out.exit_code == 1);
    CHECK(logged_out.stderr_text == "ERROR: Please run 'az login' to setup account.\n");
}

TEST_CASE("create_command: the argv of az vm create, and a shell line for a dry run") {
    azops::VmCreateSpec spec;
    spec.vm = test_vm;
    const std::vector<std::string> expected = {
        "az", "vm", "create", "-g", "openadapt-agents", "-n", "waa-eval-vm", "--image", "Ubuntu2204",
        "--size", "Standard_D8ds_v5", "--location", "eastus", "--os-disk-size-gb", "128", "--admin-username", "azureuser",
        "--generate-ssh-keys", "--public-ip-sku", "Standard", "-o", "json"};
    CHECK(azops::create_command(spec) == expected);
    CHECK(azops::create_command(spec, "/opt/az/bin/az").front() == "/opt/az/bin/az");
    CHECK(azops::format_command(azops::create_command(spec)) ==
          "az vm create -g openadapt-agents -n waa-eval-vm --image Ubuntu2204 --size Standard_D8ds_v5 "
          "--location eastus --os-disk-size-gb 128 --admin-username azureuser --generate-ssh-keys --public-ip-sku "
          "Standard -o json");
    CHECK(azops::format_command({"echo", "two words", "it's", "", "$HOME"}) ==
          "echo 'two words' 'it'\\''s' '' '$HOME'");
}

TEST_CASE("AzCli::create: runs the create command and reads the new VM, warnings on stderr aside") {
    azops_test::ScratchDir dir;
    FakeAz fake;
    fake.log = (dir / "az.log").string();
    azops::VmCreateSpec spec;
    spec.vm = test_vm;
    spec.size = "Standard_D8s_v5";
    const auto result = fake.cli().create(spec);
    CHECK(result.command.ok());
    CHECK(result.command.stderr_text.rfind("WARNING: ", 0) == 0);
    CHECK(result.vm.state == "running");
    CHECK(result.vm.ip == std::optional<std::string>("203.0.113.47"));
    CHECK(result.vm.size == std::optional<std::string>("Standard_D8s_v5"));
    CHECK(result.vm.name == std::optional<std::string>("waa-eval-vm"));
    CHECK(result.vm.region == std::optional<std::string>("eastus"));
    auto argv = azops::create_command(spec);
    argv.erase(argv.begin());
    CHECK(azops_test::read_file(fake.log) == azops::format_command(argv) + "\n");
}

TEST_CASE("AzCli::create: quota and unexpected output are clear failures, state unknown") {
    azops::VmCreateSpec spec;
    spec.vm = test_vm;
    const auto quota = fake_az("quota").create(spec);
    CHECK_FALSE(quota.command.ok());
    CHECK(quota.vm.state == "unknown");
    REQUIRE(quota.vm.error.has_value());
    CHECK(quota.vm.error->rfind("az exited with code 1: (QuotaExceeded)", 0) == 0);

    const auto odd = fake_az("unexpected").create(spec);
    CHECK(odd.command.failure == azops::AzFailure::unexpected_output);
    CHECK(odd.command.error == std::optional<std::string>(unexpected_prefix + "[]"));
    CHECK(odd.vm.state == "unknown");
    CHECK(odd.vm.error == odd.command.error);
}

TEST_CASE("VmStatePoller: delivers the VM's states as they change") {
    azops_test::ScratchDir dir;
    const auto state_file = dir / "state";
    set_scenario(state_file, "starting");
    FakeAz fake;
    fake.state_file = state_file.string();
    Recorder recorder;
    azops::VmStatePoller poller(fake.cli(), test_vm, [&](const azops::AzureVmStatus& s) { recorder.add(s); }, 10ms);

    const auto starting = recorder.wait_for_state("starting");
    REQUIRE(starting.has_value());
    CHECK(starting->ip == std::optional<std::string>("203.0.113.47"));

    std::size_t mark = recorder.count();
    set_scenario(state_file, "running");
    REQUIRE(recorder.wait_for_state("running", mark).has_value());

    mark = recorder.count();
    set_scenario(state_file, "deallocating");
    REQUIRE(recorder.wait_for_state("deallocating", mark).has_value());

    mark = recorder.count();
    set_scenario(state_file, "deallocated");
    const auto deallocated = recorder.wait_for_state("deallocated", mark);
    REQUIRE(deallocated.has_value());
    CHECK_FALSE(deallocated->ip.has_value());

    mark = recorder.count();
    set_scenario(state_file, "not_logged_in");
    const auto failed = recorder.wait_for_state("unknown", mark);
    REQUIRE(failed.has_value());
    CHECK(failed->error.has_value());
    REQUIRE(poller.latest().has_value());
}

TEST_CASE("VmStatePoller: asks at once, again on poll_now, and stops at once though the interval is long") {
    Recorder recorder;
    const auto start = std::chrono::steady_clock::now();
    {
        azops::VmStatePoller poller(fake_az("stopped"), test_vm,
                                    [&](const azops::AzureVmStatus& s) { recorder.add(s); }, std::chrono::hours(1));
        REQUIRE(recorder.wait_for_count(1));
        CHECK(poller.latest()->state == "stopped");
        poller.poll_now();
        REQUIRE(recorder.wait_for_count(2));
    }
    CHECK(recorder.count() == 2);
    CHECK(seconds_since(start) < 30.0);
}

TEST_CASE("VmStatePoller: an exception from the callback does not end the polling") {
    Recorder recorder;
    azops::VmStatePoller poller(
        fake_az("running"), test_vm,
        [&](const azops::AzureVmStatus& s) {
            recorder.add(s);
            throw std::runtime_error("callback failed");
        },
        std::chrono::hours(1));
    REQUIRE(recorder.wait_for_count(1));
    poller.poll_now();
    CHECK(recorder.wait_for_count(2));
}

TEST_CASE("VmStatePoller: destruction kills an az in flight instead of waiting for it") {
    azops_test::ScratchDir dir;
    const auto fifo = (dir / "az.log").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // Open for reading first (without blocking), so the fake's write tells the test az has started.
    const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(reader >= 0);
    FakeAz fake;
    fake.scenario = "slow";  // sleeps 30 s after logging
    fake.log = fifo;
    fake.timeout = 60s;
    Recorder recorder;
    std::chrono::steady_clock::time_point stop_started;
    {
        azops::VmStatePoller poller(fake.cli(), test_vm, [&](const azops::AzureVmStatus& s) { recorder.add(s); });
        pollfd p{reader, POLLIN, 0};
        REQUIRE(::poll(&p, 1, 30000) == 1);
        stop_started = std::chrono::steady_clock::now();
    }
    CHECK(seconds_since(stop_started) < 5.0);
    CHECK(recorder.count() == 0);  // the killed run's answer is dropped, not delivered as a failure
    ::close(reader);
}

TEST_CASE("probe_vnc: the URL once the tunnel's port accepts a connection") {
    LoopbackSocket listening(true);
    const auto url = azops::probe_vnc("127.0.0.1", listening.port(), 2s);
    CHECK(url == std::optional<std::string>("http://localhost:" + std::to_string(listening.port())));
    CHECK(azops::probe_vnc("localhost", listening.port(), 2s) == url);
}

TEST_CASE("probe_vnc: a closed port, a bad port or a name it will not resolve give nullopt, quickly") {
    LoopbackSocket bound(false);
    const int port = bound.port();
    bound.close();
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(azops::probe_vnc("127.0.0.1", port, 5s).has_value());
    CHECK(seconds_since(start) < 2.0);
    CHECK_FALSE(azops::probe_vnc("127.0.0.1", 0).has_value());
    CHECK_FALSE(azops::probe_vnc("127.0.0.1", 65536).has_value());
    CHECK_FALSE(azops::probe_vnc("vm.example.invalid", 8006).has_value());
}
