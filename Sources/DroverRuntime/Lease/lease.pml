/*
 * lease.pml: a Promela model of Drover's lease and fencing protocol, checked exhaustively by
 * scripts/model-check (Debian's `spin`). The Swift parts, and where they are here:
 *   Lease (Lease.swift)             E[h], a worker's lease expiry, and its deadlines E-MARGIN (fence),
 *                                   E-MARGIN/2 (kill the commands), E-MARGIN/4 (the supervisor kills)
 *   Worker, WorkerPass              proctype Worker: register, heartbeat, claim, start or give back,
 *                                   fence (ExecutorPool.fence), kill, report, exit 76 (lease lost)
 *   LifeSign, ChildWatch            SIGN (repE/repN/lastrep: the last sign the supervisor read), and
 *                                   proctype Supervisor: reap, kill a hung or late worker, replace it
 *   JobStore.pruneDeadProcesses     stPrune        JobStore.finish        stFinish
 *   JobStore.deregister (release    stReleaseDead  JobStore.claim         stClaim
 *     of a reaped child's jobs)                    Worker.reconcileClaims stReconcile (and giveBack)
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
 * Properties, as assertions: "no two attempts of one job at once" (startAttempt) and "no job
 * finished twice" (stFinish); with -DLIVE, bounded: "no job lost" (End: finished by TMAX, all
 * faults over at TF) and "every released job runs again or is finished" (Clock: within RR ticks).
 * Mutants (-DNAME), each of which the checker must catch: NOFENCE, HOSTCLOCK, NOSUPWATCH,
 * LATEREPORT, FENCEDZERO, LATESTART, RELEASEBYJOB, FINISHANY, NORECONCILE.
 *
 * Rules here that the Swift code (69070c6) does not have yet, each found by this model (its
 * mutant is the code as it is): the running count reaches the supervisor before a command starts
 * (LATEREPORT); a worker gives claims back by claim id, not by process and job (RELEASEBYJOB); a
 * claim it will not run is given back until the database confirms it, and the heartbeat's answer
 * says whether the row holds claims the worker does not run (CLAIMS_CHECK; NORECONCILE).
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
#define NINC 3           /* worker incarnations per host (rows unrolled below: 2 x 3) */
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
#ifndef RR
#define RR H            /* LIVE: a released job starts again within RR ticks (of TF at the earliest) */
#endif

#define NH 2                     /* hosts */
#define NP (NH*NINC)             /* process rows: incarnation k of host h is h*NINC+k */
#define NOPID 255

/* Every index into an array is a constant or a variable of the state: a step that assigned
 * x[k] for a scratch k would be undone by the search with whatever k is then. So loops over the
 * jobs (and rows) are unrolled: EACHJOB(M, ...) is M(0, ...), and M(1, ...) for a second job. */
#if NJ == 1
#define EACHJOB(M, ...) M(0, __VA_ARGS__)
#else
#define EACHJOB(M, ...) M(0, __VA_ARGS__); M(1, __VA_ARGS__)
#endif

/* ---- the database ---- */
#define J_READY   0
#define J_CLAIMED 1
#define J_DONE    2
byte jst[NJ];                    /* a job's state */
byte jown[NJ];                   /* its claim: the process row holding it */
byte nfin[NJ];                   /* ghost: results accepted */
bool rerun[NJ];                  /* ghost: released, and since neither started nor finished ... */
short relt[NJ];                  /* ghost: ... since this tick */
#define RELEASED(j) jst[j] = J_READY; jown[j] = NOPID; rerun[j] = 1; relt[j] = now
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
byte fj[NH];                     /* the job whose result goes out (within a step) */

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
#define ALLDONE (jst[0] == J_DONE)
#define UNKNOWN(h) (jst[0] == J_CLAIMED && jown[0] == wpid[h] && AT(h,0) == A_NONE)
#else
#define NRUN(h) (RUNNING(h,0) + RUNNING(h,1))
#define ANYREADY (jst[0] == J_READY || jst[1] == J_READY)
#define ANYDONE(h) (AT(h,0) == A_DONE || AT(h,1) == A_DONE)
#define FIRSTDONE(h) (AT(h,0) == A_DONE -> 0 : 1)
#define ALLDONE (jst[0] == J_DONE && jst[1] == J_DONE)
#define UNKNOWN(h) ((jst[0] == J_CLAIMED && jown[0] == wpid[h] && AT(h,0) == A_NONE) | \
                    ((jst[1] == J_CLAIMED && jown[1] == wpid[h] && AT(h,1) == A_NONE) << 1))
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
/* a fault on host h (in scope wherever INJECT is used). The hosts are alike, so the first fault
 * strikes host 0 (its mirror image is the same run); none once every job is finished */
#define INJECT(c) (now < TF && nf < NFAULTS && (h == 0 || nf > 0) && !ALLDONE && (c))
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
byte heldarg;                    /* the job (finish), the jobs to give back (reconcile), spare (prune) */
bool heldcur[NJ];                /* reconcile: the claim it read is still the job's claim. (A claim
                                    has its own id, claimed_executions.id; a new claim of the job has
                                    another: one bit says whether the id read is still current.) */
short helds;                     /* when it left (HOSTCLOCK's stamp) */

short now;
/* what a counterexample's replay (spin -t) prints; nothing while verifying */
#define SAY1(fmt, a) printf("t=%d ", now); printf(fmt, a); printf("\n")
#define SAY2(fmt, a, b) printf("t=%d ", now); printf(fmt, a, b); printf("\n")
#define SAY3(fmt, a, b, c) printf("t=%d ", now); printf(fmt, a, b, c); printf("\n")
/* scratch results within one step, zero between steps */
byte got, ok;
#define CLEAR got = 0; ok = 0

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
#define CAN_RELEASE(h) (sst[h] == S_RELEASE && !part[h])
#define CAN_RESTART(h) (sst[h] == S_RESTART && ninc[h] < NINC)
#define CAN_PRUNE(h) (now >= lastprune[h] + A/2)
#define DUE(h) (FENCE_DUE(h) || KILL_DUE(h) || REAP_DUE(h) || WATCH_DUE(h) || \
        CAN_REGISTER(h) || CAN_HEARTBEAT(h) || HAS_ANSWER(h) || CAN_RECONCILE(h) || CAN_FINISH(h) || \
        CAN_EXIT(h) || CAN_RELEASE(h) || CAN_RESTART(h) || CAN_PRUNE(h))
#ifdef LIVE
/* LIVE: from TF on, every fault ends (the partition heals, the frozen worker thaws, the held
 * statement runs), claims are prompt too and a command ends within its tick */
#define LIVE_DUE(h) (now >= TF && (CAN_CLAIM(h) || AT(h,0) == A_RUN || AT(h,NJ-1) == A_RUN || part[h] || frozen[h]))
#define URGENT (DUE(0) || DUE(1) || LIVE_DUE(0) || LIVE_DUE(1) || (now >= TF && heldk))
#else
#define URGENT (DUE(0) || DUE(1))
#endif

/* ---- the database's statements, each one transaction on the database's clock ---- */

/* JobStore.release (as crashed): the claims of row p back to ready */
#define RELEASE1(j, p) \
    if \
    :: jst[j] == J_CLAIMED && jown[j] == p -> RELEASED(j); SAY2("db: job %d released (claim of row %d)", j, p) \
    :: else \
    fi
inline stRelease(p) {
    EACHJOB(RELEASE1, p)
}

/* the supervisor's JobStore.release of a worker it reaped: its claims, and its row in the same
 * transaction (so that a claim of its that commits later finds no row, and takes nothing) */
inline stReleaseDead(p) {
    row[p] = 0; lhb[p] = 0;
    stRelease(p)
}

/* JobStore.pruneDeadProcesses: rows older than A by the database's clock, but the sender's own
 * live worker, are deleted and their claims released; so are claims whose row is gone */
#define PRUNE1(r, spared, alive) \
    if \
    :: row[r] && !(alive && r == spared) && lhb[r] < now - A -> \
        SAY2("db: prune deletes row %d (last heartbeat %d)", r, lhb[r]); row[r] = 0; lhb[r] = 0; stRelease(r) \
    :: else \
    fi
#define ORPHAN1(j, unused) \
    if \
    :: jst[j] == J_CLAIMED && !row[jown[j]] -> RELEASED(j); SAY1("db: prune releases the orphan claim of job %d", j) \
    :: else \
    fi
inline stPrune(spared, alive) {
    PRUNE1(0, spared, alive); PRUNE1(1, spared, alive); PRUNE1(2, spared, alive);
    PRUNE1(3, spared, alive); PRUNE1(4, spared, alive); PRUNE1(5, spared, alive);
    EACHJOB(ORPHAN1, 0)
}

/* the heartbeat: last_heartbeat_at := the stamp, if the row is still there (ok) */
inline stHeartbeat(p, stamp) {
    ok = row[p];
    if :: ok -> lhb[p] = stamp :: else -> SAY1("db: heartbeat of row %d: row gone", p) fi
}

/* JobStore.claim: the first ready job (got; NJ: none), for a process whose row exists */
#define CLAIM1(j, p) \
    if \
    :: got == NJ && jst[j] == J_READY -> \
        jst[j] = J_CLAIMED; jown[j] = p; heldcur[j] = 0; got = j; SAY2("db: job %d claimed by row %d", j, p) \
    :: else \
    fi
inline stClaim(p) {
    got = NJ;
    if
    :: row[p] -> EACHJOB(CLAIM1, p)
    :: else
    fi
}

/* JobStore.finish: accepted only while the claim is still the sender's, else dropped */
#ifdef FINISHANY
#define OWN_CLAIM(p, j) 1                              /* mutant: takes any result */
#else
#define OWN_CLAIM(p, j) (jst[j] == J_CLAIMED && jown[j] == p)
#endif
inline stFinish(p, j) {
    if
    :: OWN_CLAIM(p, j) ->
        jst[j] = J_DONE; jown[j] = NOPID; rerun[j] = 0;
        nfin[j]++; SAY2("db: job %d finished by row %d", j, p);
        assert(nfin[j] <= 1)                      /* PROPERTY: no job finished twice */
    :: else
    fi
}

/* Worker.reconcileClaims: the worker read the claims of row p it does not run (bits), with their
 * ids; it gives those claims back. Run late (held), a claim of the same job made
 * since has another id and stays (RELEASEBYJOB: released by process and job, as JobStore.release
 * does now). */
#ifdef RELEASEBYJOB
#define SAME_CLAIM(k, late) 1
#else
#define SAME_CLAIM(k, late) (!late || heldcur[k])
#endif
#define RECONCILE1(j, p, bits, late) \
    if \
    :: jst[j] == J_CLAIMED && jown[j] == p && (((bits) >> j) & 1) && SAME_CLAIM(j, late) -> \
        RELEASED(j); SAY2("db: reconciliation gives back job %d (row %d)", j, p) \
    :: else \
    fi
inline stReconcile(p, bits, late) {
    EACHJOB(RECONCILE1, p, bits, late)
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
#define HOLDCUR1(j, KIND, ARG) heldcur[j] = (KIND == K_RC && (((ARG) >> j) & 1))
#define ROUNDTRIP(KIND, PID, ARG, STATEMENT, ANSWER, ERROR) \
    if \
    :: part[h] -> ERROR \
    :: !part[h] && CANLOSE -> nloss++; nf++; SAY2("FAULT host %d: statement %d lost", h, KIND); ERROR \
    :: !part[h] && CANLOSE -> nloss++; nf++; STATEMENT; SAY2("FAULT host %d: answer to statement %d lost", h, KIND); ERROR \
    :: !part[h] && CANHOLD && !heldk -> nheld++; nf++; heldk = KIND; heldpid = PID; heldarg = ARG; helds = now; \
        SAY2("FAULT host %d: statement %d held up (sender times out)", h, KIND); \
        EACHJOB(HOLDCUR1, KIND, ARG); ERROR \
    :: !part[h] -> STATEMENT; ANSWER \
    fi

#define ZERO(j, x) x[j] = 0

/* the held statement runs, its answer unheard */
proctype Database() {
end:
    do
    :: atomic { heldk != 0 ->
        SAY1("db: the held statement %d runs", heldk);
        if
        :: heldk == K_HB -> stHeartbeat(heldpid, HB_STAMP(heldpid / NINC, helds))
        :: heldk == K_CL -> stClaim(heldpid)
        :: heldk == K_RC -> stReconcile(heldpid, heldarg, 1)
        :: heldk == K_FIN -> stFinish(heldpid, heldarg)
        :: heldk == K_REL -> stReleaseDead(heldpid)
        :: heldk == K_PR -> stPrune(heldpid, heldarg)
        fi;
        heldk = 0; heldpid = 0; heldarg = 0; helds = 0; EACHJOB(ZERO, heldcur);
        CLEAR }
    od
}

/* ---- commands: exit on their own, or obey TERM ---- */
proctype Attempt(byte h; byte j) {
end:
    do
    :: d_step { AT(h,j) == A_RUN -> AT(h,j) = A_DONE; SAY2("host %d: job %d's command exits", h, j) }  /* a result */
    :: d_step { AT(h,j) == A_TERMED -> AT(h,j) = A_NONE; SAY2("host %d: job %d's command obeys TERM", h, j) }
    od
}

/* ---- the worker (Worker.swift, WorkerPass), one incarnation after another on host h ---- */

/* LifeSignSender.send, after each pass (runningJobs: ExecutorPool.busy, until each command ends) */
#ifdef FENCEDZERO
#define SIGN(h) repE[h] = E[h]; lastrep[h] = now; repN[h] = (wst[h] == W_FENCED -> 0 : NRUN(h))
#else
#define SIGN(h) repE[h] = E[h]; lastrep[h] = now; repN[h] = NRUN(h)
#endif

/* a command starts (PROPERTY: no two attempts of one job at once, on any host) */
inline startAttempt(h, j) {
    SAY3("host %d worker: starts job %d (lease until %d)", h, j, E[h]);
    assert(!RUNNING(0, j) && !RUNNING(1, j));
    AT(h, j) = A_RUN; rerun[j] = 0
}

#ifdef NORECONCILE
#define CLAIM_FAILED(h) skip                           /* mutant: a claim not run is left alone */
#define CLAIMS_CHECK(h) skip
#else
#define CLAIM_FAILED(h) recon[h] = 1                   /* a claim it does not run (or may hold): reconcile */
/* the heartbeat's answer says whether the row holds claims the worker does not run (a claim that
 * committed after its sender gave up on it): reconcile */
#define CLAIMS_CHECK(h) if :: UNKNOWN(h) -> recon[h] = 1 :: else fi
#endif

/* a claim's answer may start its command: Lease.phase(at: now) == .valid when it arrives */
#ifdef LATESTART
#define START_OK(h) 1                                  /* mutant: starts whenever the answer comes */
#else
#define START_OK(h) (wst[h] == W_RUN && now < E[h] - MARGIN)
#endif

#define TERM1(j, h) if :: AT(h,j) == A_RUN -> AT(h,j) = A_TERMED :: else fi
#define KILL1(j, h) if :: RUNNING(h,j) -> AT(h,j) = A_NONE :: else fi
#define GONE1(j, h) AT(h,j) = A_NONE

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
            :: ok -> E[h] = now + A;                   /* Lease.renewed(sentAt: s) */
                CLAIMS_CHECK(h)
            :: else -> wst[h] = W_DEAD; SAY1("host %d worker: registration lost, exits", h)
            fi,
#ifdef NOFENCE
            E[h] = now + A                             /* the old code: an outage does not count */
#else
            skip                                       /* the lease runs out */
#endif
        );
        SIGN(h); CLEAR }

    /* claim (lease valid); the answer comes back in a later step */
    :: atomic { CAN_CLAIM(h) ->
        ROUNDTRIP(K_CL, wpid[h], 0, stClaim(wpid[h]), clans[h] = 1; clj[h] = got, CLAIM_FAILED(h)); CLEAR }
    :: atomic { HAS_ANSWER(h) ->
        clans[h] = 0;
        if
        :: part[h] -> CLAIM_FAILED(h)                  /* the answer is lost: the claim may have committed */
        :: !part[h] && clj[h] < NJ && START_OK(h) -> startAttempt(h, clj[h])
        :: !part[h] && clj[h] < NJ && !START_OK(h) && wst[h] == W_RUN ->
            /* too late (the lease may be renewed at this very tick, and the worker never exit):
             * give the claim back now */
            SAY1("host %d worker: claim answer too late, starts nothing", h); CLAIM_FAILED(h)
        :: else -> skip                                /* none; or fenced: released at the exit */
        fi;
        clj[h] = 0;
#ifndef LATEREPORT
        SIGN(h);                                       /* the count goes out with the start */
#endif
        CLEAR }

    /* after a failed claim: release the claims it holds and does not run */
    :: atomic { CAN_RECONCILE(h) ->
        ROUNDTRIP(K_RC, wpid[h], UNKNOWN(h), stReconcile(wpid[h], UNKNOWN(h), 0), recon[h] = 0, skip); CLEAR }

    /* report a result, kept until the database answers (fenced or not) */
    :: atomic { CAN_FINISH(h) ->
        fj[h] = FIRSTDONE(h);
        ROUNDTRIP(K_FIN, wpid[h], fj[h], stFinish(wpid[h], fj[h]), AT(h, fj[h]) = A_NONE, skip);
        fj[h] = 0; SIGN(h); CLEAR }

    /* Lease.phase .fencing at E - MARGIN: no more claims, TERM to every command */
    :: d_step { FENCE_DUE(h) ->
        wst[h] = W_FENCED; SAY2("host %d worker: fences (lease until %d), TERM", h, E[h]);
        EACHJOB(TERM1, h);
        SIGN(h) }
    /* Lease.phase .killing at E - MARGIN/2: KILL the commands still running (no result) */
    :: d_step { KILL_DUE(h) ->
        killed[h] = 1; SAY1("host %d worker: KILLs its commands", h);
        EACHJOB(KILL1, h);
        SIGN(h) }
    /* results reported: exits "lease lost" */
    :: d_step { CAN_EXIT(h) -> wst[h] = W_DEAD; SAY1("host %d worker: exits, lease lost", h) }
    od
}

/* ---- the supervisor of host h (Supervisor.watchChildren, reap, releaseJobs, restart, prune) ---- */

/* SIGKILL the worker and, as their subreaper, the commands it leaves; then release and restart */
inline killChild(h) {
    EACHJOB(GONE1, h);
    rpid[h] = wpid[h]; sst[h] = S_RELEASE;
    walive[h] = 0; frozen[h] = 0; wst[h] = W_REG; E[h] = 0; hbs[h] = 0; killed[h] = 0; recon[h] = 0;
    clans[h] = 0; clj[h] = 0; repE[h] = 0; repN[h] = 0; lastrep[h] = 0
}

proctype Supervisor(byte h) {
end:
    do
    /* reaped (crashed, or exited): the commands it left are killed at once */
    :: d_step { REAP_DUE(h) -> SAY1("host %d supervisor: reaps the worker, kills its commands", h); killChild(h) }
    /* ChildWatch.verdict: .hung (no sign for A), or .leaseRunningOut (runs jobs at E - MARGIN/4) */
    :: d_step { WATCH_DUE(h) ->
        SAY3("host %d supervisor: kills its worker (sign: %d running, lease until %d)", h, repN[h], repE[h]); killChild(h) }
    /* its claims released as crashed, once the database answers */
    :: atomic { CAN_RELEASE(h) ->
        ROUNDTRIP(K_REL, rpid[h], 0, stReleaseDead(rpid[h]), sst[h] = S_RESTART; SAY2("host %d supervisor: released row %d's claims", h, rpid[h]), skip); CLEAR }
    :: d_step { CAN_RESTART(h) ->
        wpid[h] = h*NINC + ninc[h]; ninc[h]++; walive[h] = 1; wst[h] = W_REG; lastrep[h] = now; sst[h] = S_WATCH;
        SAY2("host %d supervisor: starts a worker, row %d", h, wpid[h]) }
    /* prune every A/2, sparing its own live worker */
    :: atomic { CAN_PRUNE(h) ->
        lastprune[h] = now;
        ROUNDTRIP(K_PR, wpid[h], walive[h], stPrune(wpid[h], walive[h]), skip, skip); CLEAR }
    od
}

/* ---- faults ---- */
proctype Faults(byte h) {
end:
    do
    :: d_step { INJECT(ncrash < FCRASH) && walive[h] && wst[h] != W_DEAD -> ncrash++; nf++; wst[h] = W_DEAD;
        SAY1("FAULT host %d: worker crashes", h) }
    :: d_step { INJECT(nfreeze < FFREEZE) && ACTIVE(h) -> nfreeze++; nf++; frozen[h] = 1; SAY1("FAULT host %d: worker frozen", h) }
    :: d_step { frozen[h] -> frozen[h] = 0; SAY1("host %d: worker thaws", h) }
    :: d_step { INJECT(npart < FPART) && !part[h] -> npart++; nf++; part[h] = 1; SAY1("FAULT host %d: partitioned", h) }
    :: d_step { part[h] -> part[h] = 0; SAY1("host %d: partition heals", h) }
    od
}

#define P4(j, unused) assert(!rerun[j] || now < (relt[j] > TF -> relt[j] : TF) + RR)

/* ---- the clock: moves only when nothing is due; a worker that can take a step sends its sign
 * (LifeSign.send, at least every H/4 = every tick) ---- */
proctype Clock() {
end:
    do
    :: d_step { now < TMAX && !ALLDONE && !URGENT ->
#ifdef LIVE
        /* PROPERTY: every released job runs again (or is finished) within RR ticks of its release,
         * or of the end of the faults */
        EACHJOB(P4, 0);
#endif
        now++;
        if :: ACTIVE(0) -> SIGN(0) :: else fi;
        if :: ACTIVE(1) -> SIGN(1) :: else fi }
    od
}

/* The horizon, or every job finished (then nothing more can go wrong, and time stops). Not an end
 * state: if time stopped before (a step due and impossible), the checker finds this process
 * blocked ("invalid end state"). Under LIVE every fault is over at TF and every step is prompt:
 * by TMAX every job must be finished (PROPERTY: no job lost). */
#define P3(j, unused) \
    if \
    :: jst[j] != J_DONE -> SAY3("end: job %d is not finished (state %d, claim of row %d)", j, jst[j], jown[j]) \
    :: else \
    fi; \
    assert(jst[j] == J_DONE)
proctype End() {
    d_step { (now == TMAX || ALLDONE) && !URGENT ->
#ifdef LIVE
        EACHJOB(P3, 0);
#endif
        skip
    }
}

#define INITJOB(j, unused) jst[j] = J_READY; jown[j] = NOPID
#define RUNATTEMPT(j, h) run Attempt(h, j)
init {
    atomic {
#ifdef HOSTCLOCK
        if
        :: skew[0] = -2*A                              /* host 0's wall clock is 2A behind */
        :: skew[0] = 2*A                               /* or ahead */
        fi;
#endif
        EACHJOB(INITJOB, 0);
        wpid[0] = 0; wpid[1] = NINC; ninc[0] = 1; ninc[1] = 1; walive[0] = 1; walive[1] = 1;
        run Clock(); run End(); run Database();
        run Worker(0); run Supervisor(0); run Faults(0); EACHJOB(RUNATTEMPT, 0);
        run Worker(1); run Supervisor(1); run Faults(1); EACHJOB(RUNATTEMPT, 1)
    }
}
