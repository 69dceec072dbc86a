# SPDX-License-Identifier: MPL-2.0
# `cmake --build DIR --target uninstall`: removes exactly the files that `cmake --install DIR`
# recorded in MANIFEST (install_manifest.txt), under $DESTDIR when it is set, as for the install
# (the manifest records the paths without it). A file
# named portunusd.toml is the configuration: it goes only while it is identical to the sample
# (the installed copy, or SAMPLE from the source tree), since otherwise an operator changed it.
# Directories of the project's own (a name with "portunus", or directly inside one) that end up
# empty go too.
if(NOT MANIFEST OR NOT EXISTS "${MANIFEST}")
  message(FATAL_ERROR "uninstall: ${MANIFEST} does not exist: nothing was installed from this build "
                      "directory (it is written by `cmake --install`), so there is nothing to remove")
endif()
file(STRINGS "${MANIFEST}" listed)
set(files "")
foreach(f IN LISTS listed)
  list(APPEND files "$ENV{DESTDIR}${f}")
endforeach()

set(reference "${SAMPLE}")
foreach(f IN LISTS files)
  if(f MATCHES "/portunusd\\.toml\\.sample$" AND EXISTS "${f}")
    set(reference "${f}")
  endif()
endforeach()

set(dirs "")
set(failed "")
foreach(f IN LISTS files)
  if(NOT EXISTS "${f}" AND NOT IS_SYMLINK "${f}")
    message(STATUS "Already gone: ${f}")
    continue()
  endif()
  if(f MATCHES "/portunusd\\.toml$")
    execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${f}" "${reference}" RESULT_VARIABLE differs)
    if(NOT differs EQUAL 0)
      message(STATUS "Keeping: ${f} (it differs from the sample configuration, so it is the operator's; "
                     "remove it by hand if it is no longer wanted)")
      continue()
    endif()
  endif()
  file(REMOVE "${f}")
  if(EXISTS "${f}" OR IS_SYMLINK "${f}")
    list(APPEND failed "${f}")
  else()
    message(STATUS "Removed: ${f}")
    get_filename_component(dir "${f}" DIRECTORY)
    list(APPEND dirs "${dir}")
  endif()
endforeach()

# Deepest first, so that lib/cmake/portunus goes before a parent that only it kept.
list(REMOVE_DUPLICATES dirs)
list(SORT dirs ORDER DESCENDING)
foreach(dir IN LISTS dirs)
  get_filename_component(name "${dir}" NAME)
  get_filename_component(parent "${dir}" DIRECTORY)
  get_filename_component(parent_name "${parent}" NAME)
  file(GLOB left "${dir}/*" "${dir}/.*")
  # One level down too: share/doc/portunusd/examples goes, and then share/doc/portunusd.
  if((name MATCHES "portunus" OR parent_name MATCHES "portunus") AND IS_DIRECTORY "${dir}" AND NOT left)
    file(REMOVE_RECURSE "${dir}")
    message(STATUS "Removed: ${dir}/")
  endif()
endforeach()

if(failed)
  string(REPLACE ";" "\n  " failed "${failed}")
  message(FATAL_ERROR "uninstall: could not remove (permissions?):\n  ${failed}")
endif()
