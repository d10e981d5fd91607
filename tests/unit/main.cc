// The unit test runner: doctest's main. tools/run_tests.sh reads its summary line.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
