add_library(usermod_dgram INTERFACE)
target_sources(usermod_dgram INTERFACE ${CMAKE_CURRENT_LIST_DIR}/dgram.c)
target_include_directories(usermod_dgram INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(usermod INTERFACE usermod_dgram)
