# Install step (install(SCRIPT) in CMakeLists.txt): the installed nodes start with "#!<PYTHON_EXECUTABLE>", the
# interpreter the workspace was built with, instead of catkin's "#!/usr/bin/env python3" (whatever python3 is on
# PATH: in a plain shell Debian's, which has no onnxruntime, torch or qi). Needs FER_BIN and FER_PYTHON set.
file(GLOB fer_installed_nodes "$ENV{DESTDIR}${FER_BIN}/*")
foreach(fer_node IN LISTS fer_installed_nodes)
  file(STRINGS "${fer_node}" fer_first_line LIMIT_COUNT 1)
  if(fer_first_line MATCHES "^#![ \t]*/[^ ]*/env[ \t]+python")
    file(READ "${fer_node}" fer_text)
    string(REGEX REPLACE "^#![^\n]*" "#!${FER_PYTHON}" fer_text "${fer_text}")
    file(WRITE "${fer_node}" "${fer_text}")
  endif()
endforeach()
