// azops_cli/waa_commands.hpp — the commands a WAA setup and benchmark run on the VM, over ssh.
//
// One place for them, so that a real run, `--dry-run` and `--simulate` show the same commands.
// Long remote work (the docker build, the benchmark) runs detached on the VM with its output in a
// file or a pid recorded there: a dropped ssh connection does not end it, and a Stop ends exactly
// that process group, by its recorded id.
// Thread-safety: pure functions. Errors: none.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace azops_cli {

// Where and how to reach the VM.
struct RemoteTarget {
    std::string ssh = "ssh";
    std::string scp = "scp";
    std::string user = "azureuser";
    std::string ip;  // empty until known
};

// The image the setup builds and the container that runs Windows.
inline constexpr const char* waa_image = "waa-auto:latest";
inline constexpr const char* waa_container = "winarena";

// windows_boot's steps: the container's seven (its boot log), then the wait for the WAA server,
// which is most of a first boot (Windows installs itself after "Windows started successfully").
inline constexpr int windows_boot_steps = 8;

namespace detail {

// Non-interactive (a password prompt would hang the task), a first connection to a fresh VM
// accepted, a dead connection noticed within two minutes.
inline std::vector<std::string> ssh_options() {
    return {"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", "ConnectTimeout=20",
            "-o", "ServerAliveInterval=30", "-o", "ServerAliveCountMax=4"};
}

inline std::string host_of(const RemoteTarget& target) {
    return target.user + "@" + (target.ip.empty() ? std::string("<vm-ip>") : target.ip);
}

}  // namespace detail

inline std::vector<std::string> ssh_command(const RemoteTarget& target, std::string remote_command) {
    std::vector<std::string> argv{target.ssh};
    for (auto& option : detail::ssh_options()) argv.push_back(std::move(option));
    argv.push_back(detail::host_of(target));
    argv.push_back(std::move(remote_command));
    return argv;
}

// Copies the local folder `local_dir` to `remote_dir` in the user's home on the VM (which must not
// exist: scp would put the folder inside it).
inline std::vector<std::string> scp_command(const RemoteTarget& target, const std::string& local_dir,
                                            const std::string& remote_dir) {
    std::vector<std::string> argv{target.scp, "-r", "-q"};
    for (auto& option : detail::ssh_options()) argv.push_back(std::move(option));
    argv.push_back(local_dir);
    argv.push_back(detail::host_of(target) + ":" + remote_dir);
    return argv;
}

// The shell commands run on the VM.
namespace remote {

// Docker from Docker's own install script, unless it is there already.
inline std::string install_docker() {
    return "if command -v docker >/dev/null 2>&1; then docker --version; "
           "else curl -fsSL https://get.docker.com | sh; fi";
}

// Docker's data on the large temporary disk (/mnt), the user in the docker group (new ssh sessions
// then run docker without sudo).
inline std::string configure_docker() {
    return "sudo mkdir -p /mnt/docker && "
           "echo '{\"data-root\": \"/mnt/docker\"}' | sudo tee /etc/docker/daemon.json && "
           "sudo systemctl restart docker && sudo usermod -aG docker \"$USER\" && "
           "sudo docker info --format 'Docker root dir: {{.DockerRootDir}}'";
}

// Windows in QEMU needs KVM inside the VM: only sizes with nested virtualisation have /dev/kvm.
inline std::string check_nested_virtualization() {
    return "printf 'CPU virtualization flags: %s\\n' \"$(grep -E -c '(vmx|svm)' /proc/cpuinfo)\"; "
           "if test -e /dev/kvm; then echo 'KVM: /dev/kvm is present'; "
           "else echo 'ERROR: /dev/kvm is missing: this VM size has no nested virtualization, "
           "which Windows in QEMU needs' >&2; exit 1; fi";
}

inline std::string clear_build_folder() { return "rm -rf ~/waa-build"; }

// The build runs detached in its own process group, its output in ~/build.log, its exit code in
// ~/build.rc; this ssh session only follows the log (`tail --pid` ends with the build) and exits
// with the build's code. BuildKit prints plain progress when its output is not a terminal.
inline std::string docker_build() {
    return std::string("cd ~/waa-build || exit 1; rm -f ~/build.rc; : > ~/build.log; "
                       "setsid sh -c 'docker build --progress=plain -t ") +
           waa_image +
           " . >> ~/build.log 2>&1; echo $? > ~/build.rc' </dev/null >/dev/null 2>&1 & "
           "echo $! > ~/build.pid; tail -n +1 --pid=$! -f ~/build.log; "
           "exit \"$(cat ~/build.rc 2>/dev/null || echo 255)\"";
}

// Ends the detached build started by docker_build(): its process group, by the recorded id.
inline std::string stop_docker_build() {
    return "test -s ~/build.pid && kill -TERM -- -\"$(cat ~/build.pid)\" 2>/dev/null; true";
}

// A fresh container from the image; Windows' disk lives in /mnt/waa-storage.
inline std::string start_windows_container() {
    return std::string("docker rm -f ") + waa_container + " >/dev/null 2>&1; sudo mkdir -p /mnt/waa-storage && " +
           "docker run -d --name " + waa_container +
           " --device=/dev/kvm --cap-add NET_ADMIN -p 8006:8006 -p 5000:5000 -p 7200:7200"
           " -v /mnt/waa-storage:/storage -e VERSION=11e -e RAM_SIZE=12G -e CPU_CORES=4 -e DISK_SIZE=64G " +
           waa_image;
}

inline std::string follow_windows_log() { return std::string("docker logs -f ") + waa_container; }

// The WAA server inside Windows answers on port 5000, which the container publishes on the VM.
inline std::string probe_waa_server() { return "curl -sS --max-time 10 http://localhost:5000/probe"; }

// The benchmark client in the container, its shell's pid recorded so a Stop ends exactly it.
inline std::string run_benchmark(int tasks, const std::string& model, const std::string& agent) {
    return std::string("docker exec -w /client ") + waa_container +
           " sh -c 'echo $$ > /tmp/azops_benchmark.pid; exec python -u run.py --model " + model + " --agent " + agent +
           " --num_tasks " + std::to_string(tasks) + " --som_origin oss --result_dir results'";
}

inline std::string stop_benchmark() {
    return std::string("docker exec ") + waa_container +
           " sh -c 'test -s /tmp/azops_benchmark.pid && kill -INT \"$(cat /tmp/azops_benchmark.pid)\"'; true";
}

}  // namespace remote

}  // namespace azops_cli
