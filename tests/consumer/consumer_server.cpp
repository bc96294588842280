// azops::server brings cpp-httplib with its pkg-config flags and turns on <azops/server.hpp>.
#include <azops/azops.hpp>

#include <iostream>

int main() {
#if !defined(AZOPS_WITH_SERVER)
#error "azops::server must define AZOPS_WITH_SERVER"
#endif
    std::cout << "azops server target ok\n";
    return 0;
}
