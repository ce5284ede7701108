/*
 * lease.pml: a Promela model of Drover's lease and fencing protocol, checked exhaustively by
 * scripts/model-check (Debian's `spin`). The Swift parts, and where they are here:
 *   Lease (Lease.swift)          E[h], a worker's lease expiry, and its deadlines E-MARGIN (fence),
 *                                E-MARGIN/2 (kill the commands), E-MARGIN/4 (the supervisor kills)
 *   WorkerDecision               proctype Worker: register, heartbeat, claim, start, fence, kill, exit
 *   LifeSign (LifeSign.swift)    SIGN: repE/repN/lastrep, the last sign the supervisor has read
 *   ChildWatch                   proctype Supervisor: reap, and kill a hung or late worker
 *   JobStore.pruneDeadProcesses  stPrune;  JobStore.finish stFinish;  JobStore.release stRelease
 *   Worker.reconcileClaims       stReconcile
 *
 * Time is a global tick counter `now`. The database's clock and every host's monotonic clock
 * (CLOCK_BOOTTIME) run at its rate, so all read `now`; a host's wall clock is now + skew[h], which
 * only the HOSTCLOCK mutant reads. The clock cannot pass a tick while a step is due (URGENT): a
 * worker that is not frozen, and every supervisor, act on time; a statement and its answer take no
 * time, except the claim's answer (a freeze may come in between) and the one held statement.
 * Claims and a command's own end come at any time.
 *
 * Two hosts, each with a supervisor, one worker (restarted as new incarnations, each with a new
 * process row id) and the worker's attempts (command processes: they run on while the worker is
 * frozen). Faults, at most NFAULTS in a run: a worker crash (SIGKILL); a worker freeze (SIGSTOP, or
 * a loop stuck in a call) and its thaw; a host partitioned from the database, both ways, and healed;
 * one lost message (a request, or the answer of a statement that ran); one statement held up (a
 * lock wait) that runs at any later tick while its sender saw a time-out. A whole host that stops
 * (its supervisor and commands too) is not modelled: it is outside the guarantee.
 *
 * Properties: assertions "no two attempts of one job at once" (startAttempt) and "no job finished
 * twice" (stFinish); with -DLIVE, "no job lost" and "every released job runs again or is finished"
 * as a bounded eventually (proctype End). Mutants (-DNAME), each of which must fail:
 * NOFENCE, HOSTCLOCK, NOSUPWATCH, LATEREPORT, FENCEDZERO, LATESTART, NORECONCILE.
 */

#ifndef H
#define H 4              /* heartbeat_interval (ticks) */
#endif
#ifndef A
#define A 12             /* alive_threshold */
#endif
#define MARGIN H         /* the lease's margin: one heartbeat interval */
#ifndef NJ
#define NJ 1             /* jobs: 1 or 2 */
#endif
#ifndef NINC
#define NINC 3           /* worker incarnations per host */
#endif
#ifndef TMAX
#define TMAX 40          /* the horizon: time stops here */
#endif
#ifndef TF
#define TF TMAX          /* faults start before TF; under LIVE they all end at TF */
#endif
#ifndef NFAULTS
#define NFAULTS 2        /* faults in one run, of any kind, within the budgets below */
#endif
#ifndef FCRASH
#define FCRASH 1
#endif
#ifndef FFREEZE
#define FFREEZE 1
#endif
#ifndef FPART
#define FPART 1
#endif
#ifndef FLOSS
#define FLOSS 1
#endif
#ifndef FHELD
#define FHELD 1
#endif

#define NH 2                     /* hosts */
#define NP (NH*NINC)             /* process rows: incarnation k of host h is h*NINC+k */
#define NOPID 255

/* ---- the database ---- */
#define J_READY   0
#define J_CLAIMED 1
#define J_DONE    2
byte jst[NJ];                    /* a job's state */
byte jown[NJ];                   /* its claim: the process row holding it */
byte nfin[NJ];                   /* ghost: results accepted */
bool rerun[NJ];                  /* ghost: released, and since neither started nor finished */
bool row[NP];                    /* processes rows */
short lhb[NP];                   /* their last_heartbeat_at */

/* ---- a worker, per host ---- */
#define W_REG    0               /* registering */
#define W_RUN    1               /* lease valid: claims and runs */
#define W_FENCED 2               /* claims no more; its commands were sent TERM */
#define W_DEAD   3               /* exited or crashed, not reaped yet */
bool walive[NH];                 /* the process exists (until its supervisor reaps it) */
byte wpid[NH];                   /* its process row id */
byte ninc[NH];                   /* incarnations started */
byte wst[NH];
bool frozen[NH];
short E[NH];                     /* Lease.expiry */
short hbs[NH];                   /* when the last heartbeat left */
bool killed[NH];                 /* the fence's KILL went out */
bool recon[NH];                  /* a claim failed: reconcile before claiming again */
bool clans[NH];                  /* a claim's answer on its way back ... */
byte clj[NH];                    /* ... with this job (NJ: none) */

/* its attempts (command processes), per host and job */
#define A_NONE   0
#define A_RUN    1
#define A_TERMED 2               /* running, sent TERM (it may ignore it) */
#define A_DONE   3               /* exited on its own: a result to report */
byte att[NH*NJ];
#define AT(h,j) att[(h)*NJ+(j)]
#define RUNNING(h,j) (AT(h,j) == A_RUN || AT(h,j) == A_TERMED)
#if NJ == 1
#define NRUN(h) (RUNNING(h,0))
#define ANYREADY (jst[0] == J_READY)
#define ANYDONE(h) (AT(h,0) == A_DONE)
#define FIRSTDONE(h) 0
#define KNOWN(h) (AT(h,0) != A_NONE)
#else
#define NRUN(h) (RUNNING(h,0) + RUNNING(h,1))
#define ANYREADY (jst[0] == J_READY || jst[1] == J_READY)
#define ANYDONE(h) (AT(h,0) == A_DONE || AT(h,1) == A_DONE)
#define FIRSTDONE(h) (AT(h,0) == A_DONE -> 0 : 1)
#define KNOWN(h) ((AT(h,0) != A_NONE) | ((AT(h,1) != A_NONE) << 1))
#endif

/* LifeSign: the last sign of life the supervisor took from the pipe */
short repE[NH];
byte repN[NH];
short lastrep[NH];

/* ---- a supervisor, per host ---- */
#define S_WATCH   0              /* its worker lives */
#define S_RELEASE 1              /* its worker is gone: release row rpid's claims as crashed */
#define S_RESTART 2              /* then start a new worker */
byte sst[NH];
byte rpid[NH];
short lastprune[NH];

/* ---- faults ---- */
bool part[NH];                   /* partitioned from the database */
short skew[NH];                  /* wall clock - monotonic clock (HOSTCLOCK only) */
byte nf, ncrash, nfreeze, npart, nloss, nheld;
#define INJECT(c) (now < TF && nf < NFAULTS && (c))
#define CANLOSE INJECT(nloss < FLOSS)
#define CANHOLD INJECT(nheld < FHELD)
/* the held statement: kind, and what it carries */
#define K_HB  1
#define K_CL  2
#define K_RC  3
#define K_FIN 4
#define K_REL 5
#define K_PR  6
byte heldk;                      /* 0: none */
byte heldpid;                    /* its sender's row (the row spared, for a prune) */
byte heldarg;                    /* the job (finish), the jobs known (reconcile) */
short helds;                     /* when it left (HOSTCLOCK's stamp) */

short now;
/* scratch, written and read after a step's last choice (a hidden variable is not restored when
 * the search backs up) */
hidden byte i, k, got;
hidden byte ok;

/* ---- what is due before the clock may move ---- */
#define ACTIVE(h) (walive[h] && !frozen[h] && wst[h] != W_DEAD)
#ifdef NOFENCE
#define FENCE_DUE(h) 0
#define KILL_DUE(h) 0
#else
#define FENCE_DUE(h) (ACTIVE(h) && wst[h] == W_RUN && now >= E[h] - MARGIN)
#define KILL_DUE(h) (ACTIVE(h) && wst[h] == W_FENCED && !killed[h] && now >= E[h] - MARGIN/2)
#endif
#define REAP_DUE(h) (walive[h] && wst[h] == W_DEAD)
#ifdef NOSUPWATCH
#define WATCH_DUE(h) 0
#else
#define WATCH_DUE(h) (walive[h] && wst[h] != W_DEAD && \
        ((repN[h] > 0 && now >= repE[h] - MARGIN/4) || now >= lastrep[h] + A))
#endif
#define CAN_REGISTER(h) (ACTIVE(h) && wst[h] == W_REG && !part[h])
#define CAN_HEARTBEAT(h) (ACTIVE(h) && wst[h] == W_RUN && now >= hbs[h] + H)
#define CAN_CLAIM(h) (ACTIVE(h) && wst[h] == W_RUN && !clans[h] && !recon[h] && ANYREADY)
#define HAS_ANSWER(h) (ACTIVE(h) && clans[h])
/* retries that a partition would only lose wait for the database (so no retry loop holds the clock) */
#define CAN_RECONCILE(h) (ACTIVE(h) && wst[h] == W_RUN && recon[h] && !clans[h] && !part[h])
#define CAN_FINISH(h) (ACTIVE(h) && ANYDONE(h) && !part[h])
#define CAN_EXIT(h) (ACTIVE(h) && wst[h] == W_FENCED && (killed[h] || NRUN(h) == 0) && !ANYDONE(h))
#define SIGN_DUE(h) (ACTIVE(h) && (repE[h] != E[h] || repN[h] != NRUN(h) || now >= lastrep[h] + H/4))
#define CAN_RELEASE(h) (sst[h] == S_RELEASE && !part[h])
#define CAN_RESTART(h) (sst[h] == S_RESTART && ninc[h] < NINC)
#define CAN_PRUNE(h) (now >= lastprune[h] + A/2)
#define DUE(h) (FENCE_DUE(h) || KILL_DUE(h) || REAP_DUE(h) || WATCH_DUE(h) || \
        CAN_REGISTER(h) || CAN_HEARTBEAT(h) || HAS_ANSWER(h) || CAN_RECONCILE(h) || CAN_FINISH(h) || \
        CAN_EXIT(h) || SIGN_DUE(h) || CAN_RELEASE(h) || CAN_RESTART(h) || CAN_PRUNE(h))
#ifdef LIVE
/* LIVE: claims are prompt too, a command lasts less than a tick, and at TF every fault ends (the
 * partition heals, the frozen worker thaws, the held statement runs) */
#define LIVE_DUE(h) (CAN_CLAIM(h) || AT(h,0) == A_RUN || AT(h,NJ-1) == A_RUN || \
        (now >= TF && (part[h] || frozen[h])))
#define URGENT (DUE(0) || DUE(1) || LIVE_DUE(0) || LIVE_DUE(1) || (now >= TF && heldk))
#else
#define URGENT (DUE(0) || DUE(1))
#endif

/* ---- the database's statements, each one transaction on the database's clock ---- */

/* JobStore.release (as crashed): the claims of row p back to ready */
inline stRelease(p) {
    for (k : 0 .. NJ-1) {
        if
        :: jst[k] == J_CLAIMED && jown[k] == p -> jst[k] = J_READY; jown[k] = NOPID; rerun[k] = 1
        :: else
        fi
    }
}

/* JobStore.pruneDeadProcesses: rows older than A by the database's clock, but the sender's own
 * live worker, are deleted and their claims released; so are claims whose row is gone */
inline stPrune(spared, alive) {
    for (i : 0 .. NP-1) {
        if
        :: row[i] && !(alive && i == spared) && lhb[i] < now - A -> row[i] = 0; stRelease(i)
        :: else
        fi
    }
    for (k : 0 .. NJ-1) {
        if
        :: jst[k] == J_CLAIMED && !row[jown[k]] -> jst[k] = J_READY; jown[k] = NOPID; rerun[k] = 1
        :: else
        fi
    }
}

/* the heartbeat: last_heartbeat_at := the stamp, if the row is still there (ok) */
inline stHeartbeat(p, stamp) {
    ok = row[p];
    if :: ok -> lhb[p] = stamp :: else fi
}

/* JobStore.claim: the first ready job (got; NJ: none), for a process whose row exists */
inline stClaim(p) {
    got = NJ;
    if
    :: row[p] ->
        for (k : 0 .. NJ-1) {
            if
            :: got == NJ && jst[k] == J_READY -> jst[k] = J_CLAIMED; jown[k] = p; got = k
            :: else
            fi
        }
    :: else
    fi
}

/* JobStore.finish: accepted only while the claim is still the sender's, else dropped */
inline stFinish(p, j) {
    if
    :: jst[j] == J_CLAIMED && jown[j] == p ->
        jst[j] = J_DONE; jown[j] = NOPID; rerun[j] = 0;
        nfin[j]++;
        assert(nfin[j] <= 1)                      /* PROPERTY: no job finished twice */
    :: else
    fi
}

/* Worker.reconcileClaims: the claims of row p that it does not know (bits of known) back to ready */
inline stReconcile(p, known) {
    for (k : 0 .. NJ-1) {
        if
        :: jst[k] == J_CLAIMED && jown[k] == p && !((known >> k) & 1) -> jst[k] = J_READY; jown[k] = NOPID; rerun[k] = 1
        :: else
        fi
    }
}

/* what a heartbeat stamps: the database's now; HOSTCLOCK: the sender's wall clock when it left */
#ifdef HOSTCLOCK
#define HB_STAMP(h, s) ((s) + skew[h])
#else
#define HB_STAMP(h, s) now
#endif

/* A statement from host h and its answer. A partitioned host gets an error; the one lost message
 * is the request (error) or the answer of a statement that ran (error); the one held statement
 * waits in the server to run later while its sender times out (error). */
#define ROUNDTRIP(KIND, PID, ARG, STATEMENT, ANSWER, ERROR) \
    if \
    :: part[h] -> ERROR \
    :: !part[h] && CANLOSE -> nloss++; nf++; ERROR \
    :: !part[h] && CANLOSE -> nloss++; nf++; STATEMENT; ERROR \
    :: !part[h] && CANHOLD && !heldk -> nheld++; nf++; heldk = KIND; heldpid = PID; heldarg = ARG; helds = now; ERROR \
    :: !part[h] -> STATEMENT; ANSWER \
    fi

/* the held statement runs, its answer unheard */
proctype Database() {
end:
    do
    :: atomic { heldk != 0 ->
        if
        :: heldk == K_HB -> stHeartbeat(heldpid, HB_STAMP(heldpid / NINC, helds))
        :: heldk == K_CL -> stClaim(heldpid)
        :: heldk == K_RC -> stReconcile(heldpid, heldarg)
        :: heldk == K_FIN -> stFinish(heldpid, heldarg)
        :: heldk == K_REL -> stRelease(heldpid)
        :: heldk == K_PR -> stPrune(heldpid, heldarg)
        fi;
        heldk = 0 }
    od
}

/* ---- commands: exit on their own, or obey TERM ---- */
proctype Attempt(byte h; byte j) {
end:
    do
    :: d_step { AT(h,j) == A_RUN -> AT(h,j) = A_DONE }       /* a result for the worker */
    :: d_step { AT(h,j) == A_TERMED -> AT(h,j) = A_NONE }    /* stopped by the fence: no result */
    od
}

/* ---- WorkerDecision, one incarnation after another on host h ---- */

/* LifeSign.send, after each pass */
#ifdef FENCEDZERO
#define SIGN(h) repE[h] = E[h]; lastrep[h] = now; repN[h] = (wst[h] == W_FENCED -> 0 : NRUN(h))
#else
#define SIGN(h) repE[h] = E[h]; lastrep[h] = now; repN[h] = NRUN(h)
#endif

/* a command starts (PROPERTY: no two attempts of one job at once, on any host) */
inline startAttempt(h, j) {
    for (k : 0 .. NH-1) { assert(!RUNNING(k, j)) }
    AT(h, j) = A_RUN; rerun[j] = 0
}

#ifdef NORECONCILE
#define CLAIM_FAILED(h) skip                           /* mutant: a failed claim is forgotten */
#else
#define CLAIM_FAILED(h) recon[h] = 1                   /* the claim may have committed: reconcile */
#endif

proctype Worker(byte h) {
end:
    do
    /* register: its row, stamped by the database; the lease runs from the sending instant */
    :: d_step { CAN_REGISTER(h) ->
        row[wpid[h]] = 1; lhb[wpid[h]] = HB_STAMP(h, now); E[h] = now + A; hbs[h] = now; wst[h] = W_RUN; SIGN(h) }

    /* heartbeat every H: s = the monotonic now, then the statement; success: Lease.renewed(sentAt: s) */
    :: atomic { CAN_HEARTBEAT(h) ->
        hbs[h] = now;
        ROUNDTRIP(K_HB, wpid[h], 0, stHeartbeat(wpid[h], HB_STAMP(h, now)),
            if
            :: ok -> E[h] = now + A
            :: else -> wst[h] = W_DEAD                 /* its row is gone: exits "registration lost" */
            fi,
#ifdef NOFENCE
            E[h] = now + A                             /* the old code: an outage does not count */
#else
            skip                                       /* the lease runs out */
#endif
        );
        SIGN(h) }

    /* claim (lease valid); the answer comes back in a later step */
    :: atomic { CAN_CLAIM(h) ->
        ROUNDTRIP(K_CL, wpid[h], 0, stClaim(wpid[h]), clans[h] = 1; clj[h] = got, CLAIM_FAILED(h)) }
    :: atomic { HAS_ANSWER(h) ->
        clans[h] = 0;
        if
        :: part[h] -> CLAIM_FAILED(h)                  /* the answer is lost: the claim may have committed */
        :: !part[h] && clj[h] < NJ &&
#ifdef LATESTART
           1 ->                                        /* mutant: starts whenever the answer comes */
#else
           wst[h] == W_RUN && now < E[h] - MARGIN ->   /* Lease.phase(at: now) == .valid */
#endif
            startAttempt(h, clj[h])
        :: else                                        /* none, or too late: left to be released at the exit */
        fi;
#ifdef LATEREPORT
        skip                                           /* mutant: the new count goes out with the next pass */
#else
        SIGN(h)                                        /* the count goes out with the start */
#endif
        }

    /* after a failed claim: release the claims it holds and does not run */
    :: atomic { CAN_RECONCILE(h) ->
        ROUNDTRIP(K_RC, wpid[h], KNOWN(h), stReconcile(wpid[h], KNOWN(h)), recon[h] = 0, skip) }

    /* report a result, kept until the database answers (fenced or not) */
    :: atomic { CAN_FINISH(h) ->
        ROUNDTRIP(K_FIN, wpid[h], FIRSTDONE(h), stFinish(wpid[h], FIRSTDONE(h)), AT(h, FIRSTDONE(h)) = A_NONE, skip);
        SIGN(h) }

    /* Lease.phase .fencing at E - MARGIN: no more claims, TERM to every command */
    :: d_step { FENCE_DUE(h) ->
        wst[h] = W_FENCED;
        for (k : 0 .. NJ-1) { if :: AT(h,k) == A_RUN -> AT(h,k) = A_TERMED :: else fi };
        SIGN(h) }
    /* Lease.phase .killing at E - MARGIN/2: KILL the commands still running (no result) */
    :: d_step { KILL_DUE(h) ->
        killed[h] = 1;
        for (k : 0 .. NJ-1) { if :: RUNNING(h,k) -> AT(h,k) = A_NONE :: else fi };
        SIGN(h) }
    /* results reported: exits "lease lost" */
    :: d_step { CAN_EXIT(h) -> wst[h] = W_DEAD }

    /* LifeSign.send, at least every H/4 */
    :: d_step { SIGN_DUE(h) -> SIGN(h) }
    od
}

/* ---- the supervisor of host h ---- */

/* SIGKILL the worker and, as their subreaper, the commands it leaves; then release and restart */
inline killChild(h) {
    for (k : 0 .. NJ-1) { AT(h,k) = A_NONE };
    rpid[h] = wpid[h]; sst[h] = S_RELEASE;
    walive[h] = 0; frozen[h] = 0; wst[h] = W_REG; E[h] = 0; hbs[h] = 0; killed[h] = 0; recon[h] = 0;
    clans[h] = 0; clj[h] = 0; repE[h] = 0; repN[h] = 0; lastrep[h] = 0
}

proctype Supervisor(byte h) {
end:
    do
    /* reaped (crashed, or exited): the commands it left are killed at once */
    :: d_step { REAP_DUE(h) -> killChild(h) }
    /* ChildWatch.verdict: .hung (no sign for A), or .leaseRunningOut (runs jobs at E - MARGIN/4) */
    :: d_step { WATCH_DUE(h) -> killChild(h) }
    /* its claims released as crashed, once the database answers */
    :: atomic { CAN_RELEASE(h) -> ROUNDTRIP(K_REL, rpid[h], 0, stRelease(rpid[h]), sst[h] = S_RESTART, skip) }
    :: d_step { CAN_RESTART(h) ->
        wpid[h] = h*NINC + ninc[h]; ninc[h]++; walive[h] = 1; wst[h] = W_REG; lastrep[h] = now; sst[h] = S_WATCH }
    /* prune every A/2, sparing its own live worker */
    :: atomic { CAN_PRUNE(h) ->
        lastprune[h] = now;
        ROUNDTRIP(K_PR, wpid[h], walive[h], stPrune(wpid[h], walive[h]), skip, skip) }
    od
}

/* ---- faults ---- */
proctype Faults(byte h) {
end:
    do
    :: d_step { INJECT(ncrash < FCRASH) && walive[h] && wst[h] != W_DEAD -> ncrash++; nf++; wst[h] = W_DEAD }
    :: d_step { INJECT(nfreeze < FFREEZE) && ACTIVE(h) -> nfreeze++; nf++; frozen[h] = 1 }
    :: d_step { frozen[h] -> frozen[h] = 0 }
    :: d_step { INJECT(npart < FPART) && !part[h] -> npart++; nf++; part[h] = 1 }
    :: d_step { part[h] -> part[h] = 0 }
    od
}

/* ---- the clock: moves only when nothing is due ---- */
proctype Clock() {
end:
    do
    :: d_step { now < TMAX && !URGENT -> now++ }
    od
}

/* The horizon. Not an end state: if time stopped before TMAX (a step due and impossible), the
 * checker finds this process blocked ("invalid end state"). Under LIVE every fault is over at TF
 * and every step is prompt: by TMAX every job must be finished (PROPERTY: no job lost) and no
 * released job left waiting (PROPERTY: every released job runs again or is finished). */
proctype End() {
    d_step { now == TMAX && !URGENT ->
#ifdef LIVE
        for (k : 0 .. NJ-1) { assert(jst[k] == J_DONE && !rerun[k]) };
#endif
        skip
    }
}

init {
    atomic {
#ifdef HOSTCLOCK
        if
        :: skew[0] = -2*A                              /* host 0's wall clock is 2A behind */
        :: skew[0] = 2*A                               /* or ahead */
        fi;
#endif
        for (i : 0 .. NJ-1) { jst[i] = J_READY; jown[i] = NOPID }
        for (i : 0 .. NH-1) { wpid[i] = i*NINC; ninc[i] = 1; walive[i] = 1 }
        run Clock(); run End(); run Database();
        for (i : 0 .. NH-1) {
            run Worker(i); run Supervisor(i); run Faults(i);
            for (k : 0 .. NJ-1) { run Attempt(i, k) }
        }
    }
}
