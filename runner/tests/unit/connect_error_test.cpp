// Which connect failures the runner gives up on at start-up, and which it
// keeps retrying (libpq's messages, with the server's FATAL, as logged).
#include <gtest/gtest.h>

#include "pg_connection.h"

TEST(UnhealableConnectError, CredentialsNamesAndPrivileges) {
    for (const char *message :
         {"connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  password "
          "authentication failed for user \"app\"",
          "connection to server at \"db\" (10.0.0.1), port 5432 failed: FATAL:  no pg_hba.conf "
          "entry for host \"10.0.0.2\", user \"app\", database \"jobs\", no encryption",
          "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  database "
          "\"nosuch\" does not exist",
          "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  role \"ghost\" "
          "does not exist",
          "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  permission denied "
          "for database \"jobs\"",
          "invalid connection option \"nosuch\""}) {
        EXPECT_TRUE(jobq::UnhealableConnectError(message, false)) << message;
    }
    EXPECT_TRUE(jobq::UnhealableConnectError("fe_sendauth: no password supplied", true));
}

TEST(UnhealableConnectError, WhatCanHealIsRetried) {
    for (const char *message :
         {"connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: No such file or "
          "directory",
          "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused",
          "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  the database "
          "system is starting up",
          "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  sorry, too many "
          "clients already",
          "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  too many "
          "connections for role \"app\"",
          "could not translate host name \"db\" to address: Temporary failure in name resolution",
          "connect timed out"}) {
        EXPECT_FALSE(jobq::UnhealableConnectError(message, false)) << message;
    }
}
