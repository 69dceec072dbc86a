# SPDX-License-Identifier: MPL-2.0
# Runs at install time (cmake --install, cpack): the systemd units name the paths of this
# install, whose prefix is only known now (cpack installs with its own, /usr), and the sample
# configuration goes to SYSCONFDIR unless the operator has one there already.
# Set before this runs: PORTUNUS_SOURCE_DIR, PORTUNUS_STAGE_DIR, PORTUNUS_SBINDIR,
# PORTUNUS_LIBEXECDIR, PORTUNUS_LIBDIR (relative, as GNUInstallDirs gives them),
# PORTUNUS_CONFIGURED_PREFIX, PORTUNUS_INSTALL_UNITS.

# GNUInstallDirs' rule for SYSCONFDIR: /etc for the prefix /usr, PREFIX/etc otherwise.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr" OR CMAKE_INSTALL_PREFIX STREQUAL "/")
  set(SYSCONFDIR "/etc")
else()
  set(SYSCONFDIR "${CMAKE_INSTALL_PREFIX}/etc")
endif()
set(SBINDIR "${CMAKE_INSTALL_PREFIX}/${PORTUNUS_SBINDIR}")
set(LIBEXECDIR "${CMAKE_INSTALL_PREFIX}/${PORTUNUS_LIBEXECDIR}")

if(PORTUNUS_INSTALL_UNITS)
  set(_units)
  foreach(unit portunusd.service portunus-app@.service)
    configure_file("${PORTUNUS_SOURCE_DIR}/etc/systemd/${unit}.in" "${PORTUNUS_STAGE_DIR}/${unit}" @ONLY)
    list(APPEND _units "${PORTUNUS_STAGE_DIR}/${unit}")
  endforeach()
  # The socket unit is an example: shipped with the documentation, enabled by no one.
  file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE FILES ${_units})
  file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/share/doc/portunusd/examples" TYPE FILE
    FILES "${PORTUNUS_SOURCE_DIR}/etc/systemd/portunusd.socket")
endif()

# Never overwrite an operator's configuration (a package manager handles conffiles itself).
if(EXISTS "$ENV{DESTDIR}${SYSCONFDIR}/portunusd.toml")
  message(STATUS "Keeping: $ENV{DESTDIR}${SYSCONFDIR}/portunusd.toml")
else()
  file(INSTALL DESTINATION "${SYSCONFDIR}" TYPE FILE FILES "${PORTUNUS_SOURCE_DIR}/etc/portunusd.toml")
endif()

# The pkg-config file names the prefix the tree was configured with; an install elsewhere (cpack
# installs with /usr) must name its own, or `pkg-config --cflags portunus` points nowhere.
set(_pc "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/${PORTUNUS_LIBDIR}/pkgconfig/portunus.pc")
if(EXISTS "${_pc}" AND NOT PORTUNUS_CONFIGURED_PREFIX STREQUAL CMAKE_INSTALL_PREFIX)
  file(READ "${_pc}" _text)
  string(REPLACE "prefix=${PORTUNUS_CONFIGURED_PREFIX}\n" "prefix=${CMAKE_INSTALL_PREFIX}\n" _text "${_text}")
  file(WRITE "${_pc}" "${_text}")
endif()
