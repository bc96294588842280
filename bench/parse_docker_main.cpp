// `azops parse docker FILE|-` as a program of its own, for the throughput benchmark.
#include "../examples/azops_cli/parse_docker.hpp"

#include <fstream>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " FILE|-\n";
        return 2;
    }
    const std::string path = argv[1];
    if (path == "-") return azops_cli::run_parse_docker(std::cin, std::cout, std::cerr);
    std::ifstream in(path, std::ios::binary);
    return azops_cli::run_parse_docker(in, std::cout, std::cerr);
}
