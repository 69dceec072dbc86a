// SPDX-License-Identifier: MPL-2.0
// The Catch2 main() every unit-test binary links.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
