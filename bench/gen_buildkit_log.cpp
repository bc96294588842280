// Writes a BuildKit `--progress=plain` log of about the requested size, shaped like a WAA image build:
// 21 numbered steps of stage-0 plus the implicit pull of the image COPY --from names, where almost every
// line is a step's output (`#24 41.07 Collecting gymnasium`, 60–120 bytes, a few with ANSI colours).
//
//   gen_buildkit_log OUTPUT [SIZE]     SIZE in bytes, with an optional K, M or G suffix (default 1G)
//
// The content is deterministic: the same size gives the same file.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

// A small deterministic generator, so runs compare like with like.
class Random {
public:
    std::uint64_t next() {
        state_ ^= state_ << 13;
        state_ ^= state_ >> 7;
        state_ ^= state_ << 17;
        return state_;
    }
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

private:
    std::uint64_t state_ = 0x9E3779B97F4A7C15ULL;
};

const char* const packages[] = {"gymnasium",  "torch",          "numpy",          "requests",
                                "flask",      "pillow",         "transformers",   "opencv-python-headless",
                                "playwright", "pyautogui",      "easyocr",        "groundingdino",
                                "tiktoken",   "openai",         "anthropic",      "scipy",
                                "matplotlib", "pydantic",       "fastapi",        "uvicorn",
                                "psutil",     "pywinauto-stub", "azure-identity", "lxml"};
const char* const debs[] = {
    "libpython3.11-stdlib", "python3.11",      "libexpat1", "tesseract-ocr", "libgl1",
    "libglib2.0-0",         "ca-certificates", "xvfb",      "libnss3",       "fonts-liberation"};

std::string output_text(Random& rng) {
    char buf[256];
    const char* pkg = packages[rng.below(sizeof packages / sizeof *packages)];
    const char* deb = debs[rng.below(sizeof debs / sizeof *debs)];
    const unsigned major = 1 + rng.below(9), minor = rng.below(40), patch = rng.below(12);
    switch (rng.below(10)) {
        case 0: std::snprintf(buf, sizeof buf, "Collecting %s==%u.%u.%u", pkg, major, minor, patch); break;
        case 1:
            std::snprintf(buf, sizeof buf, "  Downloading %s-%u.%u.%u-py3-none-any.whl (%u.%u MB)", pkg, major, minor,
                          patch, 1 + static_cast<unsigned>(rng.below(800)), static_cast<unsigned>(rng.below(10)));
            break;
        case 2:
            std::snprintf(buf, sizeof buf,
                          "Requirement already satisfied: %s>=%u.%u in /opt/venv/lib/python3.11/site-packages", pkg,
                          major, minor);
            break;
        case 3:
            std::snprintf(buf, sizeof buf,
                          "Get:%u http://deb.debian.org/debian bookworm/main amd64 %s amd64 %u.%u-%u [%u kB]",
                          static_cast<unsigned>(rng.below(300)), deb, major, minor, patch,
                          10 + static_cast<unsigned>(rng.below(4000)));
            break;
        case 4:
            std::snprintf(buf, sizeof buf, "Setting up %s (%u.%u.%u-1+deb12u%u) ...", deb, major, minor, patch, major);
            break;
        case 5: std::snprintf(buf, sizeof buf, "Unpacking %s:amd64 (%u.%u.%u-2) ...", deb, major, minor, patch); break;
        case 6:
            std::snprintf(buf, sizeof buf, "  Building wheel for %s (pyproject.toml): finished with status 'done'",
                          pkg);
            break;
        case 7:
            // Some tools colour their output even when it goes to a pipe: one line in twenty.
            std::snprintf(buf, sizeof buf,
                          rng.below(2) ? "\x1b[1m\x1b[32mSuccessfully installed\x1b[0m %s-%u.%u.%u"
                                       : "Successfully installed %s-%u.%u.%u",
                          pkg, major, minor, patch);
            break;
        default:
            std::snprintf(buf, sizeof buf, "Installing collected packages: %s, %s", pkg,
                          packages[rng.below(sizeof packages / sizeof *packages)]);
            break;
    }
    return buf;
}

// BuildKit's precision for the seconds before a log line.
void format_time(char* out, std::size_t size, double t) {
    if (t < 10)
        std::snprintf(out, size, "%.3f", t);
    else if (t < 100)
        std::snprintf(out, size, "%.2f", t);
    else
        std::snprintf(out, size, "%.1f", t);
}

std::uint64_t parse_size(const char* text) {
    char* end = nullptr;
    const double value = std::strtod(text, &end);
    double scale = 1;
    if (*end == 'K' || *end == 'k') scale = 1024.0;
    if (*end == 'M' || *end == 'm') scale = 1024.0 * 1024;
    if (*end == 'G' || *end == 'g') scale = 1024.0 * 1024 * 1024;
    return static_cast<std::uint64_t>(value * scale);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s OUTPUT [SIZE]\n", argv[0]);
        return 2;
    }
    const std::uint64_t target = argc > 2 ? parse_size(argv[2]) : parse_size("1G");
    std::FILE* out = std::fopen(argv[1], "wb");
    if (out == nullptr) {
        std::perror(argv[1]);
        return 1;
    }
    std::vector<char> buffer(1 << 20);
    std::setvbuf(out, buffer.data(), _IOFBF, buffer.size());
    std::uint64_t written = 0;
    const auto put = [&](const std::string& s) {
        std::fwrite(s.data(), 1, s.size(), out);
        written += s.size();
    };

    put("#0 building with \"default\" instance using docker driver\n\n");
    put("#1 [internal] load build definition from Dockerfile\n#1 transferring dockerfile: 11.38kB done\n#1 DONE "
        "0.0s\n\n");
    put("#5 FROM "
        "docker.io/windowsarena/"
        "winarena:latest@sha256:7f3e9a1c5b2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7\n");
    put("#5 DONE 414.0s\n\n#6 [stage-0  1/21] FROM docker.io/dockurr/windows:latest\n#6 CACHED\n\n");

    Random rng;
    const int steps = 21;
    const std::uint64_t per_step = target / (steps - 1);
    char line[512], time_text[32];
    for (int step = 2; step <= steps; ++step) {
        const int vertex = step + 6;
        std::snprintf(
            line, sizeof line,
            "#%d [stage-0 %2d/%d] RUN /opt/venv/bin/pip install --no-cache-dir -r /client/requirements-%d.txt\n",
            vertex, step, steps, step);
        put(line);
        double t = 0.05;
        const std::uint64_t stop = written + per_step;
        while (written < stop && written < target) {
            t += 0.001 * static_cast<double>(rng.below(40));
            format_time(time_text, sizeof time_text, t);
            put("#" + std::to_string(vertex) + " " + time_text + " " + output_text(rng) + "\n");
        }
        std::snprintf(line, sizeof line, "#%d DONE %.1fs\n\n", vertex, t + 0.1);
        put(line);
    }
    put("#28 exporting to image\n#28 exporting layers 95.3s done\n");
    put("#28 naming to docker.io/library/waa-auto:latest done\n#28 DONE 95.4s\n");
    if (std::fclose(out) != 0) {
        std::perror(argv[1]);
        return 1;
    }
    std::printf("%llu\n", static_cast<unsigned long long>(written));
    return 0;
}
