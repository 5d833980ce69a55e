# Run by `cmake --install` (install(CODE) in deploy/CMakeLists.txt), so that the systemd unit
# names the prefix of this install, also when it is given with `cmake --install --prefix DIR`
# after configuring.  In: ERRQ_UNIT_TEMPLATE, ERRQ_SAMPLE_CONFIG, ERRQ_GEN_DIR,
# ERRQ_BINDIR_REL, ERRQ_SYSCONFDIR_REL, ERRQ_DATADIR_REL (GNUInstallDirs values, maybe
# absolute).  DESTDIR is added by file(INSTALL), never written into the unit.
set(_prefix "${CMAKE_INSTALL_PREFIX}")
foreach(_d BINDIR SYSCONFDIR DATADIR)
  if(IS_ABSOLUTE "${ERRQ_${_d}_REL}")
    set(_${_d} "${ERRQ_${_d}_REL}")
  elseif(_d STREQUAL "SYSCONFDIR" AND _prefix STREQUAL "/usr")
    set(_${_d} "/etc")                     # as GNUInstallDirs: /usr keeps its config in /etc
  else()
    set(_${_d} "${_prefix}/${ERRQ_${_d}_REL}")
  endif()
endforeach()

set(ERRQ_BINDIR "${_BINDIR}")
set(ERRQ_SYSCONFDIR "${_SYSCONFDIR}")
configure_file("${ERRQ_UNIT_TEMPLATE}" "${ERRQ_GEN_DIR}/errqd.service" @ONLY)
# prefix/lib/systemd/system: /usr/lib/systemd/system and /usr/local/lib/systemd/system are
# both on systemd's search path.
file(INSTALL "${ERRQ_GEN_DIR}/errqd.service" DESTINATION "${_prefix}/lib/systemd/system")

# The sample config: always in share/errq as the reference, and in etc/errq only when that
# file does not exist yet, so a reinstall never overwrites an operator's settings.
file(INSTALL "${ERRQ_SAMPLE_CONFIG}" DESTINATION "${_DATADIR}/errq")
if(EXISTS "$ENV{DESTDIR}${_SYSCONFDIR}/errq/errqd.yaml")
  message(STATUS "Keeping: $ENV{DESTDIR}${_SYSCONFDIR}/errq/errqd.yaml")
else()
  file(INSTALL "${ERRQ_SAMPLE_CONFIG}" DESTINATION "${_SYSCONFDIR}/errq")
endif()
