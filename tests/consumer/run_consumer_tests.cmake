# Installs azops into a scratch prefix and builds tests/consumer against it with find_package, then
# builds it again with azops added as a subfolder.
# Run as: cmake -DSOURCE_DIR=... -DWORK_DIR=... -DGENERATOR=... -P run_consumer_tests.cmake
file(REMOVE_RECURSE "${WORK_DIR}")
function(run)
    execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed (${rc}): ${ARGV}\n${out}\n${err}")
    endif()
endfunction()
run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${WORK_DIR}/azops-build" -G "${GENERATOR}"
    -DAZOPS_BUILD_TESTS=OFF -DAZOPS_BUILD_EXAMPLES=OFF -DAZOPS_INSTALL=ON
    "-DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix")
run("${CMAKE_COMMAND}" --install "${WORK_DIR}/azops-build")
run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/consumer-build" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/consumer-build")
run("${WORK_DIR}/consumer-build/consumer")
run("${WORK_DIR}/consumer-build/consumer_server")
message(STATUS "find_package(azops) from an installed copy: ok")

run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/subdir-build" -G "${GENERATOR}"
    "-DAZOPS_SOURCE=${SOURCE_DIR}")
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/subdir-build")
run("${WORK_DIR}/subdir-build/consumer")
message(STATUS "add_subdirectory(azops): ok")
