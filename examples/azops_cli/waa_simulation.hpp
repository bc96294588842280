// azops_cli/waa_simulation.hpp — what a WAA setup and a WAA benchmark print, simulated.
//
// Owns the scripts that `setup_waa --simulate` and `run_waa --simulate` replay: `az vm create`'s
// JSON, Docker's install script, a BuildKit plain build of the waa-auto image (21 steps, a long pip
// step), the dockurr/windows container's log (ANSI colours, wget's dot progress), the probes of the
// WAA server, and WAA's own log (`[2026-01-28 22:55:15,221 INFO run/262-MainProcess] ...`). The lines
// are in the formats the real programs print, so the Tracker reads them with its real parsers.
// Durations are those of real runs (the field notes): a setup takes 29-38 minutes, a benchmark
// task 3-10 minutes. The same seed gives the same script; only WAA's timestamps follow the clock.
// Thread-safety: pure functions of their arguments. Errors: nothing throws but std::bad_alloc.
#pragma once

#include <azops/azure.hpp>

#include "simulation.hpp"
#include "waa_commands.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace azops_cli::sim {

// A failure to simulate, for trying out how the page and the exit code report it.
enum class Fault {
    none,
    quota,        // az vm create: QuotaExceeded for the size's family
    build_error,  // the docker build fails in a RUN step (python3: not found)
    boot_error,   // the container stops: not enough free space in /storage
    stall,        // the docker build goes silent for 25 minutes in the pip step, then resumes
};

inline std::optional<Fault> parse_fault(std::string_view name) {
    if (name == "none") return Fault::none;
    if (name == "quota") return Fault::quota;
    if (name == "build-error") return Fault::build_error;
    if (name == "boot-error") return Fault::boot_error;
    if (name == "stall") return Fault::stall;
    return std::nullopt;
}

struct SetupSimulation {
    azops::VmCreateSpec vm;                // group, name, size, region of the simulated VM
    std::vector<std::string> operations;   // which of the four to simulate, in order
    std::string az = "az";                 // the az shown in command lines
    RemoteTarget remote;                   // ssh names shown in command lines; the IP is simulated
    std::uint64_t seed = 1;
    Fault fault = Fault::none;
};

namespace detail {

inline std::string fixed(double value, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    return buf;
}

// The command line a real run logs before running it.
inline std::string shown(const std::vector<std::string>& argv) { return "$ " + azops::format_command(argv); }

inline bool has(const std::vector<std::string>& ops, std::string_view op) {
    return std::find(ops.begin(), ops.end(), op) != ops.end();
}

// Each draw from the generator is a statement of its own: the operands of `+` may be evaluated in
// any order, and a seed must give the same values whichever compiler built the program.
inline std::string simulated_ip(Rng& rng) {
    const int b = rng.between(40, 250);
    const int c = rng.between(1, 254);
    const int d = rng.between(2, 254);
    return "20." + std::to_string(b) + "." + std::to_string(c) + "." + std::to_string(d);
}

inline std::string guid(Rng& rng) {
    const std::string a = rng.hex(8);
    const std::string b = rng.hex(4);
    const std::string c = rng.hex(3);
    const char variant = "89ab"[rng.next() & 3];
    const std::string d = rng.hex(3);
    const std::string e = rng.hex(12);
    return a + "-" + b + "-4" + c + "-" + variant + d + "-" + e;
}

// ---- vm_create ----

inline void vm_create(Script& s, Rng& rng, const SetupSimulation& sim, const std::string& ip) {
    const auto& vm = sim.vm.vm;
    s.operation("vm_create");
    s.vm(azops::VmInfo{vm.name, sim.vm.size, sim.vm.location, std::nullopt, std::nullopt, std::nullopt});
    s.line(shown({sim.az, "vm", "get-instance-view", "-g", vm.resource_group, "-n", vm.name, "-o", "json"}));
    s.wait(rng.uniform(1.5, 3.5));
    s.line("ERROR: (ResourceNotFound) The Resource 'Microsoft.Compute/virtualMachines/" + vm.name +
           "' under resource group '" + vm.resource_group +
           "' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix");
    s.vm(azops::VmInfo{std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::string("absent"), std::nullopt});
    s.line(shown(azops::create_command(sim.vm, sim.az)));
    s.wait(rng.uniform(4, 8));
    s.line("WARNING: Consider upgrading security for your workloads using Azure Trusted Launch VMs. To know more about "
           "Trusted Launch, please visit https://aka.ms/TrustedLaunch.");
    if (sim.fault == Fault::quota) {
        s.wait(rng.uniform(8, 15));
        s.line("ERROR: (QuotaExceeded) Operation could not be completed as it results in exceeding approved "
               "standardDDSv5Family Cores quota. Additional details - Deployment Model: Resource Manager, Location: " +
               sim.vm.location + ", Current Limit: 10, Current Usage: 8, Additional Required: 8, (Minimum) New Limit "
               "Required: 16.");
        s.line("Code: QuotaExceeded");
        s.fail("az exited with code 1: (QuotaExceeded) Operation could not be completed as it results in exceeding "
               "approved standardDDSv5Family Cores quota (" + sim.vm.location + ")");
        return;
    }
    // What the VM poller sees while az waits: the VM appears, starting, then running.
    const double provisioning = rng.uniform(95, 165);
    s.wait(provisioning * 0.45);
    s.vm(azops::VmInfo{std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::string("starting"), std::nullopt});
    s.wait(provisioning * 0.55);
    const std::string subscription = guid(rng);
    const std::string mac_4 = rng.hex(2);
    const std::string mac_5 = rng.hex(2);
    const std::string mac_6 = rng.hex(2);
    const std::string json_text =
        "{\n"
        "  \"fqdns\": \"\",\n"
        "  \"id\": \"/subscriptions/" + subscription + "/resourceGroups/" + vm.resource_group +
        "/providers/Microsoft.Compute/virtualMachines/" + vm.name + "\",\n"
        "  \"location\": \"" + sim.vm.location + "\",\n"
        "  \"macAddress\": \"60-45-BD-" + mac_4 + "-" + mac_5 + "-" + mac_6 + "\",\n"
        "  \"powerState\": \"VM running\",\n"
        "  \"privateIpAddress\": \"10.0.0.4\",\n"
        "  \"publicIpAddress\": \"" + ip + "\",\n"
        "  \"resourceGroup\": \"" + vm.resource_group + "\",\n"
        "  \"zones\": \"\"\n"
        "}";
    std::size_t at = 0;
    while (at < json_text.size()) {
        const std::size_t end = json_text.find('\n', at);
        s.line(json_text.substr(at, end == std::string::npos ? std::string::npos : end - at));
        at = end == std::string::npos ? json_text.size() : end + 1;
    }
    // What a real run learns from the same output, through the same parser.
    const azops::AzureVmStatus created = azops::parse_vm_create(json_text);
    s.vm(azops::VmInfo{created.name, sim.vm.size, created.region, created.ip, created.state, std::nullopt});
    s.wait(0.5);
}

// ---- docker_install ----

inline void docker_install(Script& s, Rng& rng, const SetupSimulation& sim) {
    s.operation("docker_install", 3);
    s.step(1, 3, "Installing Docker (get.docker.com)");
    s.line(shown(ssh_command(sim.remote, remote::install_docker())));
    s.wait(rng.uniform(1, 2.5));
    s.line("# Executing docker install script, commit: " + rng.hex(40));
    const std::vector<std::pair<std::string, double>> install = {
        {"+ sudo -E sh -c 'apt-get -qq update >/dev/null'", 9},
        {"+ sudo -E sh -c 'DEBIAN_FRONTEND=noninteractive apt-get -y -qq install ca-certificates curl >/dev/null'", 4},
        {"+ sudo -E sh -c 'install -m 0755 -d /etc/apt/keyrings'", 0.2},
        {"+ sudo -E sh -c 'curl -fsSL \"https://download.docker.com/linux/ubuntu/gpg\" -o /etc/apt/keyrings/docker.asc'", 0.6},
        {"+ sudo -E sh -c 'chmod a+r /etc/apt/keyrings/docker.asc'", 0.1},
        {"+ sudo -E sh -c 'echo \"deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] "
         "https://download.docker.com/linux/ubuntu jammy stable\" > /etc/apt/sources.list.d/docker.list'", 0.1},
        {"+ sudo -E sh -c 'apt-get -qq update >/dev/null'", 4},
        {"+ sudo -E sh -c 'DEBIAN_FRONTEND=noninteractive apt-get -y -qq install docker-ce docker-ce-cli containerd.io "
         "docker-compose-plugin docker-ce-rootless-extras docker-buildx-plugin >/dev/null'", 45},
        {"+ sudo -E sh -c 'docker version'", 0.4},
    };
    for (const auto& [text, seconds] : install) {
        s.line(text);
        s.wait(seconds * rng.uniform(0.7, 1.5));
    }
    for (const char* text : {"Client: Docker Engine - Community", " Version:           27.3.1",
                             " API version:       1.47", " Go version:        go1.22.7", " Git commit:        ce12230",
                             " OS/Arch:           linux/amd64", " Context:           default", "",
                             "Server: Docker Engine - Community", " Engine:", "  Version:          27.3.1",
                             "  API version:      1.47 (minimum version 1.24)", " containerd:",
                             "  Version:          1.7.22", "", "================================================"
                             "================================", "",
                             "To run Docker as a non-privileged user, consider setting up the",
                             "Docker daemon in rootless mode for your user:", "",
                             "    dockerd-rootless-setuptool.sh install", ""}) {
        s.line(text);
    }
    s.wait(rng.uniform(0.5, 1.5));
    s.step(2, 3, "Configuring Docker: data on /mnt, user in the docker group");
    s.line(shown(ssh_command(sim.remote, remote::configure_docker())));
    s.wait(rng.uniform(1, 2));
    s.line("{\"data-root\": \"/mnt/docker\"}");
    s.wait(rng.uniform(3, 6));
    s.line("Docker root dir: /mnt/docker");
    s.step(3, 3, "Checking nested virtualization (/dev/kvm)");
    s.line(shown(ssh_command(sim.remote, remote::check_nested_virtualization())));
    s.wait(rng.uniform(0.8, 1.6));
    s.line("CPU virtualization flags: 8");
    s.line("KVM: /dev/kvm is present");
    s.wait(0.3);
}

// ---- docker_build (BuildKit, --progress=plain) ----

// BuildKit prints a step's output with its seconds since the step began: 0.183, 41.07, 612.4.
inline std::string buildkit_seconds(double t) {
    if (t < 10) return fixed(t, 3);
    if (t < 100) return fixed(t, 2);
    return fixed(t, 1);
}

inline std::string gigabytes(double bytes) {
    if (bytes >= 1e9) return fixed(bytes / 1e9, 2) + "GB";
    return fixed(bytes / 1e6, 2) + "MB";
}

struct BuildStep {
    std::string instruction;
    double seconds;                     // typical duration
    std::vector<std::string> output;    // lines the step prints, spread over its duration
};

inline std::vector<BuildStep> waa_build_steps(Rng& rng) {
    const std::string sha = rng.hex(64);
    const std::string copy_from = "COPY --from=windowsarena/winarena:latest ";
    return {
        {"FROM docker.io/dockurr/windows:latest@sha256:" + sha, 0, {}},
        {copy_from + "/entry.sh /entry.sh", 0.2, {}},
        {copy_from + "/entry_setup.sh /entry_setup.sh", 0.1, {}},
        {copy_from + "/start_client.sh /start_client.sh", 0.1, {}},
        {copy_from + "/client /client", 6.8, {}},
        {copy_from + "/models /models", 48, {}},
        {copy_from + "/oem /oem", 0.3, {}},
        {"COPY start_waa_server.bat /oem/start_waa_server.bat", 0.05, {}},
        {"RUN sed -i '/^return 0$/i cp -r /oem/* /tmp/smb/ 2>/dev/null || true' /run/samba.sh &&     echo \"Inserted "
         "OEM copy before return in samba.sh\"",
         0.2, {"Inserted OEM copy before return in samba.sh"}},
        {"RUN sed -i 's|<Key>/image/index</Key>|<Key>/IMAGE/INDEX</Key>|' /run/assets/win11x64-enterprise-eval.xml", 0.2,
         {}},
        {"RUN sed -i 's/20.20.20.21/172.30.0.2/g' /entry_setup.sh /client/desktop_env/providers/qemu/manager.py", 0.3, {}},
        {"RUN sed -i 's|<AutoLogon>|<AutoLogon><Password><Value>docker</Value></Password>|' "
         "/run/assets/win11x64-enterprise-eval.xml",
         0.2, {}},
        {"RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python3-venv "
         "tesseract-ocr",
         26,
         {"Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]",
          "Get:2 http://deb.debian.org/debian bookworm-updates InRelease [55.4 kB]",
          "Get:3 http://deb.debian.org/debian-security bookworm-security InRelease [48.0 kB]",
          "Fetched 9044 kB in 1s (6122 kB/s)", "Reading package lists...", "Building dependency tree...",
          "The following NEW packages will be installed:",
          "  libpython3.11 python3 python3-pip python3-venv python3.11 tesseract-ocr",
          "0 upgraded, 41 newly installed, 0 to remove and 0 not upgraded.",
          "Setting up python3.11 (3.11.2-6+deb12u2) ...", "Setting up tesseract-ocr (5.3.0-2) ..."}},
        {"COPY api_agent.py /client/mm_agents/navi/api_agent.py", 0.05, {}},
        {"RUN python3 -m venv /opt/venv", 3.9, {}},
        {"RUN /opt/venv/bin/pip install --no-cache-dir --upgrade pip wheel", 2.6,
         {"Collecting pip", "  Downloading pip-24.2-py3-none-any.whl (1.8 MB)", "Collecting wheel",
          "Successfully installed pip-24.2 wheel-0.44.0"}},
        {"COPY requirements.txt /client/requirements.txt", 0.05, {}},
        {"RUN /opt/venv/bin/pip install --no-cache-dir -r /client/requirements.txt", 330, {}},  // output below
        {"RUN /opt/venv/bin/playwright install --with-deps chromium", 45,
         {"Installing dependencies...", "Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]",
          "Setting up libnss3:amd64 (2:3.87.1-1) ...",
          "Downloading Chromium 127.0.6533.17 (playwright build v1124) from https://playwright.azureedge.net/builds/"
          "chromium/1124/chromium-linux.zip",
          "Chromium 127.0.6533.17 (playwright build v1124) downloaded to /root/.cache/ms-playwright/chromium-1124"}},
        {"RUN sed -i '/<\\/FirstLogonCommands>/i <SynchronousCommand wcm:action=\"add\"><Order>30</Order><CommandLine>"
         "cmd /C \\\\host.lan\\Data\\install.bat</CommandLine></SynchronousCommand>' "
         "/run/assets/win11x64-enterprise-eval.xml",
         0.2, {}},
        {"RUN chmod +x /entry.sh /entry_setup.sh /start_client.sh", 0.3, {}},
    };
}

// The requirements of the WAA client, as pip reports collecting them.
inline std::vector<std::pair<std::string, std::string>> pip_packages() {
    return {{"gymnasium", "gymnasium-0.29.1-py3-none-any.whl (953 kB)"},
            {"numpy", "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl (18.3 MB)"},
            {"torch==2.3.1", "torch-2.3.1-cp311-cp311-manylinux1_x86_64.whl (779.1 MB)"},
            {"torchvision==0.18.1", "torchvision-0.18.1-cp311-cp311-manylinux1_x86_64.whl (7.0 MB)"},
            {"transformers==4.44.2", "transformers-4.44.2-py3-none-any.whl (9.5 MB)"},
            {"openai==1.45.0", "openai-1.45.0-py3-none-any.whl (374 kB)"},
            {"opencv-python-headless", "opencv_python_headless-4.10.0.84-cp37-abi3-manylinux_2_17_x86_64.whl (49.9 MB)"},
            {"easyocr", "easyocr-1.7.1-py3-none-any.whl (2.9 MB)"},
            {"playwright==1.46.0", "playwright-1.46.0-py3-none-manylinux1_x86_64.whl (37.5 MB)"},
            {"pyautogui", "PyAutoGUI-0.9.54.tar.gz (61 kB)"},
            {"flask==3.0.3", "flask-3.0.3-py3-none-any.whl (101 kB)"},
            {"nvidia-cudnn-cu12==8.9.2.26", "nvidia_cudnn_cu12-8.9.2.26-py3-none-manylinux1_x86_64.whl (731.7 MB)"},
            {"nvidia-cublas-cu12==12.1.3.1", "nvidia_cublas_cu12-12.1.3.1-py3-none-manylinux1_x86_64.whl (410.6 MB)"},
            {"groundingdino-py", "groundingdino-py-0.4.0.tar.gz (80 kB)"}};
}

// The pip step: quick collecting, long downloads of the CUDA wheels, then minutes of building and
// installing, with a line at least every ~90 s so that a real silence stands out. Returns how long
// the step took.
inline double pip_step_output(Script& s, Rng& rng, int index, double seconds, Fault fault) {
    const std::string tag = "#" + std::to_string(index) + " ";
    double t = 0;
    const auto emit = [&](double at, const std::string& text) {
        s.wait(std::max(0.0, at - t));
        t = std::max(t, at);
        s.line(tag + buildkit_seconds(t) + " " + text);
    };
    const auto packages = pip_packages();
    const double download_end = seconds * 0.45;
    for (std::size_t i = 0; i < packages.size(); ++i) {
        const double at = 1.5 + download_end * static_cast<double>(i) / static_cast<double>(packages.size());
        emit(at, "Collecting " + packages[i].first);
        emit(at + rng.uniform(0.2, 1.0), "  Downloading " + packages[i].second);
    }
    emit(download_end + 2, "Building wheels for collected packages: pyautogui, groundingdino-py");
    if (fault == Fault::stall) {
        // A real hang: no output at all for 25 minutes, then the build goes on.
        s.wait(25 * 60);
        t += 25 * 60;
    }
    emit(download_end + rng.uniform(30, 60), "  Building wheel for groundingdino-py (setup.py): finished with status 'done'");
    emit(download_end + rng.uniform(70, 90), "Successfully built pyautogui groundingdino-py");
    const double install_start = download_end + 95;
    const double install = std::max(20.0, seconds - install_start);
    emit(install_start, "Installing collected packages: nvidia-cublas-cu12, nvidia-cudnn-cu12, numpy, torch, "
                        "torchvision, transformers, openai, opencv-python-headless, easyocr, playwright, pyautogui, "
                        "flask, gymnasium, groundingdino-py");
    emit(install_start + install * 0.3, "  Attempting uninstall: numpy");
    emit(install_start + install * 0.3 + 0.1, "    Found existing installation: numpy 1.24.4");
    emit(install_start + install * 0.3 + 0.2, "    Uninstalling numpy-1.24.4:");
    emit(install_start + install * 0.3 + 0.6, "      Successfully uninstalled numpy-1.24.4");
    emit(install_start + install * 0.95,
         "Successfully installed easyocr-1.7.1 flask-3.0.3 groundingdino-py-0.4.0 gymnasium-0.29.1 numpy-1.26.4 "
         "openai-1.45.0 opencv-python-headless-4.10.0.84 playwright-1.46.0 pyautogui-0.9.54 torch-2.3.1 "
         "torchvision-0.18.1 transformers-4.44.2");
    const double end = std::max(t, install_start + install);
    s.wait(end - t);
    return end;
}

inline void docker_build(Script& s, Rng& rng, const SetupSimulation& sim, const std::string& build_context) {
    s.operation("docker_build");
    s.line(shown(ssh_command(sim.remote, remote::clear_build_folder())));
    s.wait(rng.uniform(0.8, 1.5));
    s.line(shown(scp_command(sim.remote, build_context, "waa-build")));
    s.wait(rng.uniform(1, 2));
    s.line(shown(ssh_command(sim.remote, remote::docker_build())));
    s.wait(rng.uniform(0.8, 1.5));

    const std::vector<BuildStep> steps = waa_build_steps(rng);
    const int total = static_cast<int>(steps.size());
    const auto label = [&](int k) {
        const std::string count = std::to_string(k);
        const std::string width = std::to_string(total);
        return "[stage-0 " + std::string(width.size() - count.size(), ' ') + count + "/" + width + "] ";
    };
    const std::string winarena = "docker.io/windowsarena/winarena:latest@sha256:" + rng.hex(64);
    const std::string dockurr = steps[0].instruction.substr(5);

    s.line("#0 building with \"default\" instance using docker driver");
    s.line("");
    s.line("#1 [internal] load build definition from Dockerfile");
    s.line("#1 transferring dockerfile: 11.38kB done");
    s.line("#1 DONE 0.0s");
    s.line("");
    s.wait(rng.uniform(0.6, 1.2));
    const std::string metadata_seconds = fixed(rng.uniform(0.7, 1.3), 1);
    s.line("#2 [internal] load metadata for docker.io/windowsarena/winarena:latest");
    s.line("#2 DONE " + metadata_seconds + "s");
    s.line("");
    s.line("#3 [internal] load metadata for docker.io/dockurr/windows:latest");
    s.line("#3 DONE " + metadata_seconds + "s");
    s.line("");
    s.line("#4 [internal] load .dockerignore");
    s.line("#4 transferring context: 2B done");
    s.line("#4 DONE 0.0s");
    s.line("");

    // The base image and the image COPY --from reads, pulled at once; the big layer dominates.
    const std::string big_layer = rng.hex(64);
    const std::string small_layer = rng.hex(64);
    const double big_bytes = 9.87e9;
    const double bandwidth = rng.uniform(30e6, 42e6);
    const double pull_seconds = big_bytes / bandwidth;
    s.line("#5 FROM " + winarena);
    s.line("#5 resolve " + winarena + " 0.0s done");
    s.line("#5 sha256:" + big_layer + " 0B / 9.87GB 0.2s");
    s.line("#5 ...");
    s.line("");
    s.line("#6 " + label(1) + steps[0].instruction);
    s.line("#6 resolve " + dockurr + " 0.0s done");
    s.wait(rng.uniform(2, 4));
    s.line("#6 sha256:" + rng.hex(64) + " 131.45MB / 131.45MB 3.9s done");
    s.line("#6 extracting sha256:" + rng.hex(64) + " 2.1s done");
    s.line("#6 DONE 6.3s");
    s.line("");
    s.line("#7 [internal] load build context");
    s.line("#7 transferring context: 12.61kB done");
    s.line("#7 DONE 0.0s");
    s.line("");
    s.line("#5 FROM " + winarena);
    double pulled_at = 6;
    for (double at = rng.uniform(30, 40); at < pull_seconds; at += rng.uniform(32, 42)) {
        s.wait(at - pulled_at);
        pulled_at = at;
        s.line("#5 sha256:" + big_layer + " " + gigabytes(big_bytes * at / pull_seconds) + " / 9.87GB " + fixed(at, 1) + "s");
    }
    s.wait(pull_seconds - pulled_at);
    s.line("#5 sha256:" + big_layer + " 9.87GB / 9.87GB " + fixed(pull_seconds, 1) + "s done");
    s.line("#5 sha256:" + small_layer + " 412.77MB / 412.77MB 19.6s done");
    s.line("#5 extracting sha256:" + big_layer);
    const double extract_seconds = rng.uniform(60, 90);
    s.wait(extract_seconds);
    s.line("#5 extracting sha256:" + big_layer + " " + fixed(extract_seconds, 1) + "s done");
    s.wait(4);
    s.line("#5 extracting sha256:" + small_layer + " 4.1s done");
    s.line("#5 DONE " + fixed(pull_seconds + extract_seconds + 4.2, 1) + "s");
    s.line("");

    const int failing_step = 16;
    for (int k = 2; k <= total; ++k) {
        const BuildStep& step = steps[static_cast<std::size_t>(k - 1)];
        const std::string tag = "#" + std::to_string(k + 6) + " ";
        s.line(tag + label(k) + step.instruction);
        if (sim.fault == Fault::build_error && k == failing_step) {
            s.wait(0.21);
            s.line(tag + "0.211 /bin/sh: 1: /opt/venv/bin/pip: not found");
            s.line(tag + "ERROR: process \"/bin/sh -c " + step.instruction.substr(4) +
                   "\" did not complete successfully: exit code: 127");
            s.line("------");
            s.line(" > " + label(k) + step.instruction + ":");
            s.line("0.211 /bin/sh: 1: /opt/venv/bin/pip: not found");
            s.line("------");
            s.line("ERROR: failed to solve: process \"/bin/sh -c " + step.instruction.substr(4) +
                   "\" did not complete successfully: exit code: 127");
            s.fail("the docker build failed (exit code 1): process \"/bin/sh -c " + step.instruction.substr(4) +
                   "\" did not complete successfully: exit code: 127");
            return;
        }
        double seconds = step.seconds * rng.uniform(0.8, 1.3);
        if (step.instruction.find("-r /client/requirements.txt") != std::string::npos) {
            seconds = pip_step_output(s, rng, k + 6, seconds, sim.fault);
        } else {
            for (std::size_t i = 0; i < step.output.size(); ++i) {
                const double at = seconds * static_cast<double>(i + 1) / static_cast<double>(step.output.size() + 1);
                s.line(tag + buildkit_seconds(at) + " " + step.output[i]);
            }
            s.wait(seconds);
        }
        s.line(tag + "DONE " + fixed(seconds, 1) + "s");
        s.line("");
    }
    const std::string tag = "#" + std::to_string(total + 7) + " ";
    const double export_seconds = rng.uniform(60, 95);
    s.line(tag + "exporting to image");
    s.line(tag + "exporting layers");
    s.wait(export_seconds);
    s.line(tag + "exporting layers " + fixed(export_seconds, 1) + "s done");
    s.line(tag + "writing image sha256:" + rng.hex(64) + " done");
    s.line(tag + "naming to docker.io/library/waa-auto:latest done");
    s.line(tag + "DONE " + fixed(export_seconds + 0.1, 1) + "s");
    s.wait(0.5);
}

// ---- windows_boot ----

// dockurr/windows prints its progress as `❯ text` in colour.
inline std::string boot_info(const std::string& text) { return "\x1b[1;34m\xE2\x9D\xAF \x1b[1;36m" + text + "\x1b[0m"; }

inline std::string speed_text(double mib_per_s) {
    return mib_per_s >= 99.95 ? std::to_string(static_cast<int>(mib_per_s + 0.5)) + "M" : fixed(mib_per_s, 1) + "M";
}

inline std::string wget_eta(double seconds) {
    const int s = static_cast<int>(seconds + 0.5);
    return s >= 60 ? std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s" : std::to_string(s) + "s";
}

// wget --progress=dot:giga: 32 MiB a row, one dot a MiB, in clusters of eight.
inline void wget_download(Script& s, Rng& rng, double total_mib, std::string next_info_line) {
    const int rows = static_cast<int>(total_mib / 32);
    const double base_speed = rng.uniform(90, 125);
    for (int row = 0; row < rows; ++row) {
        const double speed = base_speed * rng.uniform(0.8, 1.15);
        const double seconds = 32.0 / speed;
        s.wait(seconds);
        const int pct = static_cast<int>(100.0 * 32.0 * (row + 1) / total_mib);
        char head[32];
        std::snprintf(head, sizeof head, "%6dK", row * 32768);
        char pct_text[16];
        std::snprintf(pct_text, sizeof pct_text, "%3d%%", std::clamp(pct, 0, 99));
        char speed_field[16];
        std::snprintf(speed_field, sizeof speed_field, " %5s", speed_text(speed).c_str());
        const double left = (total_mib - 32.0 * (row + 1)) / base_speed;
        s.line(std::string(head) + " ........ ........ ........ ........" + pct_text + speed_field + " " + wget_eta(left));
    }
    const int last_dots = std::max(1, static_cast<int>(total_mib) - rows * 32);
    std::string dots;
    for (int i = 0; i < last_dots; ++i) dots += (i % 8 == 0 ? " ." : ".");
    char head[32];
    std::snprintf(head, sizeof head, "%6dK", rows * 32768);
    s.wait(last_dots / base_speed);
    char speed_field[16];
    std::snprintf(speed_field, sizeof speed_field, " %5s", speed_text(base_speed).c_str());
    // wget never ends its last row: the container's next line follows on it.
    s.line(std::string(head) + dots + std::string(36 - dots.size(), ' ') + "100%" + speed_field + "=" +
           wget_eta(total_mib / base_speed) + next_info_line);
}

inline void windows_boot(Script& s, Rng& rng, const SetupSimulation& sim) {
    s.operation("windows_boot", windows_boot_steps);
    s.line(shown(ssh_command(sim.remote, remote::start_windows_container())));
    s.wait(rng.uniform(1.5, 3));
    s.line(rng.hex(64));
    s.line(shown(ssh_command(sim.remote, remote::follow_windows_log())));
    s.wait(rng.uniform(0.5, 1));
    s.line(boot_info("Starting Windows for Docker v4.35..."));
    s.line(boot_info("For support visit https://github.com/dockur/windows"));
    s.line(boot_info("CPU: AMD EPYC 7763 64-Core Processor | RAM: 29/31 GB | DISK: 287 GB (ext4) | KERNEL: "
                     "6.5.0-1025-azure..."));
    if (sim.fault == Fault::boot_error) {
        s.line("");
        s.wait(0.5);
        s.line(boot_info("ERROR: Not enough free space in /storage, have 8 GB available but need at least 12 GB."));
        s.fail("Windows did not start: Not enough free space in /storage, have 8 GB available but need at least 12 GB.");
        return;
    }
    s.line("");
    s.line(boot_info("Requesting Windows 11 Enterprise from the Microsoft servers..."));
    s.wait(rng.uniform(8, 20));
    s.line(boot_info("Downloading Windows 11 Enterprise..."));
    s.line("");
    wget_download(s, rng, 6147.0, boot_info("Extracting Windows 11 Enterprise image..."));
    s.wait(rng.uniform(35, 60));
    s.line(boot_info("Detecting version from ISO image..."));
    s.wait(rng.uniform(2, 4));
    s.line(boot_info("Detected: Windows 11 Enterprise Evaluation"));
    s.line(boot_info("Adding win11x64-enterprise-eval.xml for automatic installation..."));
    s.wait(rng.uniform(1, 3));
    s.line(boot_info("Adding drivers to image..."));
    s.wait(rng.uniform(5, 10));
    s.line(boot_info("Adding OEM folder to image..."));
    s.wait(rng.uniform(1, 2));
    s.line(boot_info("Building Windows 11 Enterprise image..."));
    s.wait(rng.uniform(45, 80));
    s.line(boot_info("Creating a 64G growable disk image in raw format..."));
    s.wait(rng.uniform(0.5, 1.5));
    s.line(boot_info("Booting Windows using QEMU v9.2.2..."));
    s.wait(rng.uniform(3, 6));
    s.line("BdsDxe: loading Boot0004 \"UEFI Misc Device\" from PciRoot(0x0)/Pci(0x5,0x0)\r");
    s.line("BdsDxe: starting Boot0004 \"UEFI Misc Device\" from PciRoot(0x0)/Pci(0x5,0x0)\r");
    s.wait(rng.uniform(1, 3));
    s.line("Press any key to boot from CD or DVD...\r\x1b[2K\r");
    s.wait(rng.uniform(5, 12));
    s.line(boot_info("Windows started successfully, visit http://127.0.0.1:8006/ to view the screen..."));
    s.vm(azops::VmInfo{std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                       std::string("http://localhost:8006")});

    // Windows installs itself and runs its first-logon scripts; the WAA server comes last.
    s.step(windows_boot_steps, windows_boot_steps, "Waiting for the WAA server");
    s.line(shown(ssh_command(sim.remote, remote::probe_waa_server())));
    const double ready_after = rng.uniform(8 * 60, 13 * 60);
    int attempt = 0;
    for (double waited = 0; waited < ready_after; waited += 15) {
        ++attempt;
        s.phase("waiting_for_waa_server", "Windows is installing: the WAA server does not answer yet (probe " +
                                              std::to_string(attempt) + ", every 15 s)");
        s.line("curl: (56) Recv failure: Connection reset by peer");
        s.wait(15);
    }
    s.line("{\"message\": \"Service is operational\", \"status\": \"Probe successful\"}");
    s.phase("waa_server_ready", "The WAA server answers: Service is operational");
    s.wait(0.5);
}

}  // namespace detail

// The whole setup: the selected operations in order, and the IP the simulated VM gets.
struct SetupScript {
    Script script;
    std::string ip;
};

inline SetupScript setup_waa_script(SetupSimulation sim, const std::string& build_context) {
    Rng rng(sim.seed);
    SetupScript out;
    out.ip = detail::simulated_ip(rng);
    sim.remote.ip = out.ip;
    Script& s = out.script;
    if (!detail::has(sim.operations, "vm_create")) {
        // The VM exists already and runs.
        s.vm(azops::VmInfo{sim.vm.vm.name, sim.vm.size, sim.vm.location, out.ip, std::string("running"), std::nullopt});
    }
    for (const std::string& op : sim.operations) {
        if (op == "vm_create") detail::vm_create(s, rng, sim, out.ip);
        else if (op == "docker_install") detail::docker_install(s, rng, sim);
        else if (op == "docker_build") detail::docker_build(s, rng, sim, build_context);
        else if (op == "windows_boot") detail::windows_boot(s, rng, sim);
        if (!s.events().empty() && s.events().back().kind == Event::Kind::fail) return out;
    }
    s.end();
    return out;
}

// ---- the benchmark ----

struct BenchmarkSimulation {
    int tasks = 13;
    std::string model = "gpt-4o";
    std::string agent = "navi";
    RemoteTarget remote;
    std::uint64_t seed = 1;
};

namespace detail {

// `2026-01-28 22:55:15,221`, UTC (an Azure VM's clock).
inline std::string asctime_utc(std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    gmtime_r(&secs, &utc);
    char buf[48];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &utc);
    char out[64];
    std::snprintf(out, sizeof out, "%s,%03d", buf, static_cast<int>(ms % 1000));
    return out;
}

// Python's repr of a float: the shortest text that reads back as the same number, with ".0" on
// whole numbers.
inline std::string python_float(double value) {
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    std::string text = ec == std::errc() ? std::string(buf, end) : fixed(value, 6);
    if (text.find_first_of(".e") == std::string::npos) text += ".0";
    return text;
}

struct WaaTask {
    std::string domain;
    std::string id;
    std::string instruction;
    std::string app;  // what the agent opens first
};

inline std::vector<WaaTask> waa_catalogue() {
    return {
        {"chrome", "", "Open Chrome and set https://www.example.org as the page shown on startup.", "chrome"},
        {"chrome", "", "Clear the browsing history of the last hour in Chrome.", "chrome"},
        {"clock", "", "Set an alarm for 7:15 AM on weekdays named Standup.", "clock"},
        {"file_explorer", "", "Create a folder named Invoices on the Desktop and move invoice_march.pdf into it.",
         "explorer"},
        {"file_explorer", "", "Rename every .jpeg file in Pictures\\Trip to use the .jpg extension.", "explorer"},
        {"libreoffice_calc", "", "In budget.ods, fill column D with the sum of columns B and C for each row.",
         "soffice"},
        {"libreoffice_writer", "", "Make the first paragraph of report.odt bold and centered.", "soffice"},
        {"microsoft_paint", "", "Draw a red rectangle on a new canvas and save it as box.png on the Desktop.",
         "mspaint"},
        {"msedge", "", "Add https://www.example.org to the favourites bar in Edge.", "msedge"},
        {"notepad", "", "Open Notepad and save a file named shopping_list.txt on the Desktop listing milk, eggs and "
                        "bread.", "notepad"},
        {"notepad", "", "Replace every occurrence of \"colour\" with \"color\" in draft.txt and save the file.",
         "notepad"},
        {"settings", "", "Turn on Night light in the display settings.", "ms-settings:display"},
        {"settings", "", "Change the time zone to (UTC+01:00) Amsterdam, Berlin, Bern.", "ms-settings:dateandtime"},
        {"vlc", "", "Open intro.mp4 in VLC and set the playback speed to 1.5x.", "vlc"},
        {"vs_code", "", "Install the Python extension in Visual Studio Code.", "code"},
        {"windows_calc", "", "Compute 1234 multiplied by 5678 in Calculator.", "calc"},
        {"windows_calc", "", "Switch Calculator to Programmer mode and convert 255 to hexadecimal.", "calc"},
    };
}

inline std::string waa_action(Rng& rng) {
    const std::vector<std::string> actions = {
        "computer.mouse.move_id(id=41)", "computer.mouse.single_click()",
        "computer.mouse.double_click()", "computer.keyboard.write(\"milk, eggs, bread\")",
        "computer.keyboard.press(\"enter\")", "computer.keyboard.hotkey(\"ctrl\", \"s\")",
        "computer.window_manager.switch_to_application(\"Untitled - Notepad\")", "computer.mouse.move_id(id=65)",
        "computer.keyboard.press(\"tab\")", "computer.mouse.scroll(\"down\")"};
    return rng.pick(actions);
}

class WaaLog {
public:
    WaaLog(Script& s, std::chrono::system_clock::time_point start) : s_(s), start_(start) {}

    // One record of WAA's logger, as its stdout handler formats it (colours and all).
    void record(const std::string& module, int line, const std::string& message) {
        const auto t = start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                    std::chrono::duration<double>(s_.now()));
        s_.line("\x1b[1;33m[" + asctime_utc(t) + " \x1b[31mINFO \x1b[32m" + module + "/" + std::to_string(line) +
                "-MainProcess\x1b[1;33m] \x1b[0m" + message);
    }

private:
    Script& s_;
    std::chrono::system_clock::time_point start_;
};

}  // namespace detail

// The benchmark run: WAA's client waiting for the server, the task list, then each task's steps,
// evaluation, result and cleanup; `start` dates the log records.
inline Script run_waa_script(const BenchmarkSimulation& sim, std::chrono::system_clock::time_point start) {
    Rng rng(sim.seed);
    Script s;
    detail::WaaLog log(s, start);
    s.operation("benchmark");
    s.line(detail::shown(ssh_command(sim.remote, remote::run_benchmark(sim.tasks, sim.model, sim.agent))));
    s.wait(rng.uniform(1, 2));
    s.line("Waiting for the server to start...");
    s.wait(rng.uniform(1, 3));
    s.line("Response from server: {'message': 'Service is operational', 'status': 'Probe successful'}");

    // The tasks: a deterministic draw from the catalogue, grouped by domain as WAA runs them.
    std::vector<detail::WaaTask> catalogue = detail::waa_catalogue();
    std::vector<detail::WaaTask> tasks;
    for (int i = 0; i < sim.tasks; ++i) {
        detail::WaaTask task = rng.pick(catalogue);
        task.id = detail::guid(rng) + "-WOS";
        tasks.push_back(std::move(task));
    }
    std::stable_sort(tasks.begin(), tasks.end(), [](const auto& a, const auto& b) { return a.domain < b.domain; });

    log.record("run", 470, "");
    s.line("TESTING ON TASK JSON PATH: evaluation_examples_windows/test_custom.json");
    log.record("run", 484, "Left tasks:");
    for (std::size_t i = 0; i < tasks.size();) {
        std::size_t j = i;
        while (j < tasks.size() && tasks[j].domain == tasks[i].domain) ++j;
        s.line(tasks[i].domain + ": " + std::to_string(j - i));
        i = j;
    }
    s.line("");
    std::string worker = "Worker 0 is doing tasks: [";
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        worker += (i ? ", " : "") + std::string("('") + tasks[i].domain + "', '" + tasks[i].id + "')";
    }
    log.record("run", 505, worker + "]");
    s.line("New experiment, no result yet.");
    s.wait(rng.uniform(0.5, 1.5));

    double score_sum = 0;
    for (const detail::WaaTask& task : tasks) {
        s.task_begin();
        log.record("run", 251, "Windows Agent Arena: Starting on NORMAL difficulty");
        log.record("run", 253, "");
        s.line("TESTING ON TASK CONFIG PATH: evaluation_examples_windows/examples/" + task.domain + "/" + task.id + ".json");
        log.record("run", 262, "[Domain]: " + task.domain);
        log.record("run", 263, "[Example ID]: " + task.id);
        log.record("run", 267, "[Instruction]: " + task.instruction);
        const int steps = rng.between(4, 14);
        for (int k = 1; k <= steps; ++k) {
            s.wait(rng.uniform(4, 9));
            log.record("lib_run_single", 46, "Agent: Thinking...");
            s.wait(rng.uniform(10, 28));
            log.record("agent", 401, "Thinking...");
            s.wait(rng.uniform(0.5, 2));
            log.record("python", 62, "Updated computer successfully");
            const std::string action = k == 1        ? "computer.os.open_program(\"" + task.app + "\")"
                                       : k == steps ? std::string("DONE")
                                                    : detail::waa_action(rng);
            log.record("lib_run_single", 56, "Step " + std::to_string(k) + ": " + action);
            s.wait(rng.uniform(2, 5));
            log.record("lib_run_single", 60, "Reward: 0.00");
            log.record("lib_run_single", 61, std::string("Done: ") + (k == steps ? "True" : "False"));
        }
        log.record("lib_run_single", 80, "The episode is done.");
        log.record("lib_run_single", 84, "Running evaluator(s)...");
        s.wait(rng.uniform(60, 95));
        const double result = rng.chance(0.4) ? 1.0 : 0.0;
        score_sum += result;
        log.record("lib_run_single", 86, "Result: " + detail::fixed(result, 2));
        log.record("run", 320, "Finished " + task.domain + "/" + task.id);
        s.task_end(task.domain + "/" + task.id);
        s.wait(rng.uniform(0.5, 2.5));
    }
    log.record("run", 331, "Average score: " + detail::python_float(tasks.empty() ? 0.0 : score_sum / tasks.size()));
    s.wait(0.5);
    s.end();
    return s;
}

}  // namespace azops_cli::sim
