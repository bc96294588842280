# Finds what azops' targets link: nlohmann_json, Threads and cpp-httplib. Used by the build and by
# the installed azopsConfig.cmake alike, so both resolve cpp-httplib the same way.
#
# Debian ships cpp-httplib as a compiled library with only a pkg-config file, whose Cflags define
# CPPHTTPLIB_*_SUPPORT macros that change class layouts: it must come through pkg-config, never
# through hand-written flags. Other distributions' CMake packages (httplib::httplib) are used first.
include(CMakeFindDependencyMacro)
if(CMAKE_FIND_PACKAGE_NAME)  # read by azopsConfig.cmake: a missing dependency fails find_package(azops)
    macro(_azops_require)
        find_dependency(${ARGV})
    endmacro()
else()
    macro(_azops_require)
        find_package(${ARGV} REQUIRED)
    endmacro()
endif()
_azops_require(Threads)
_azops_require(nlohmann_json 3.11)
if(NOT TARGET httplib::httplib)
    find_package(httplib CONFIG QUIET)
    if(NOT httplib_FOUND)
        _azops_require(PkgConfig)
        pkg_check_modules(AZOPS_HTTPLIB QUIET IMPORTED_TARGET GLOBAL cpp-httplib)
        if(TARGET PkgConfig::AZOPS_HTTPLIB)
            add_library(httplib::httplib INTERFACE IMPORTED GLOBAL)
            target_link_libraries(httplib::httplib INTERFACE PkgConfig::AZOPS_HTTPLIB)
        else()
            message(WARNING "azops: cpp-httplib not found (Debian: apt-get install libcpp-httplib-dev); "
                            "azops::server will not link")
            add_library(httplib::httplib INTERFACE IMPORTED GLOBAL)
        endif()
    endif()
endif()
