/*
 * sctp_group.h - cmocka group fixtures for tests that run usrsctp: one
 * stack for the whole group, as in dcmfd (one per process).
 */
#ifndef DCMF_TEST_SCTP_GROUP_H
#define DCMF_TEST_SCTP_GROUP_H

/* Starts the process's usrsctp stack; 0 or the stack's error. */
int dcmf_test_sctp_group_setup(void **state);

/* Stops it (see dcmf_test_sctp_finish); always 0. */
int dcmf_test_sctp_group_teardown(void **state);

/* Stops the stack, ticking it while usrsctp reports busy: closed
 * sockets drain for a while, which is not an error for a test. Bounded
 * to 50 ticks of 100 ms of usrsctp time (no real waiting). */
void dcmf_test_sctp_finish(void);

#endif
