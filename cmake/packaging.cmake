# SPDX-License-Identifier: MPL-2.0
# The systemd units, the configuration file, and a Debian package of everything that installs
# (cpack -G DEB from a build tree). Included at the end of the top-level CMakeLists.txt.
option(PORTUNUS_INSTALL_SYSTEMD_UNITS "install portunusd.service and portunus-app@.service"
  ${CMAKE_HOST_UNIX})
install(CODE "
  set(PORTUNUS_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(PORTUNUS_STAGE_DIR \"${PROJECT_BINARY_DIR}/service-files\")
  set(PORTUNUS_SBINDIR \"${CMAKE_INSTALL_SBINDIR}\")
  set(PORTUNUS_LIBEXECDIR \"${CMAKE_INSTALL_LIBEXECDIR}\")
  set(PORTUNUS_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(PORTUNUS_CONFIGURED_PREFIX \"${CMAKE_INSTALL_PREFIX}\")
  set(PORTUNUS_INSTALL_UNITS ${PORTUNUS_INSTALL_SYSTEMD_UNITS})")
install(SCRIPT ${CMAKE_CURRENT_LIST_DIR}/install_service_files.cmake)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME portunusd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DESCRIPTION "portunusd listens on TCP and UDP ports and relays every request to an
application through a door (userland doors over AF_UNIX on Linux). The package holds the daemon,
the portunus control tool, the door library with its headers, CMake and pkg-config files, the
example applications, the manual pages and systemd units.")
set(CPACK_PACKAGE_CONTACT "portunusd maintainers <portunusd@localhost>")
# Installed with DESTDIR and the prefix /usr, so absolute paths (/etc) land where they should
# and the install-time script sees the real prefix.
# (with CPACK_SET_DESTDIR, cpack installs with CPACK_INSTALL_PREFIX, not the tree's prefix).
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_CURRENT_LIST_DIR}/debian/conffiles
  ${CMAKE_CURRENT_LIST_DIR}/debian/postinst
  ${CMAKE_CURRENT_LIST_DIR}/debian/prerm
  ${CMAKE_CURRENT_LIST_DIR}/debian/postrm)
# The daemon's default -f follows the prefix it is installed under (main.cpp), so a package
# made from a tree configured for /usr/local still reads /etc/portunusd.toml without -f.
include(CPack)
