namespace Vae.Core

open System
open TorchSharp

/// Settings of the exact marginal likelihood by quadrature (Quadrature.logMarginal).
type QuadratureConfig =
    { /// A datapoint's estimate is final when a refinement (a halved spacing or a wider grid) changes it by less than
      /// this many nats.
      Tolerance: float
      /// The grid's spacing at the first level, in the posterior's whitened coordinates (posterior standard deviations).
      Spacing: float
      /// The grid's half-width, in whitened coordinates; a datapoint's axes widen 2.5-fold while more than BoundaryMass
      /// of its integral lies on the grid's outermost shell.
      HalfWidth: float
      /// The largest share of the integral allowed on the grid's outermost shell.
      BoundaryMass: float
      /// The most grid points per datapoint at one level: a datapoint still changing at this size is reported as not
      /// converged.
      MaxPoints: int
      /// Moment-matching passes that place the grid on the posterior's mass (Quadrature.place).
      Placements: int
      /// Grids at most per datapoint: its first, then one for each further body of mass the search grid sees beside
      /// the earlier ones (another mode, or a tail too heavy for the first grid).
      MaxModes: int
      /// The grid's first centre is the best, by log p(x, z), of this many draws from q(z|x) and as many from the prior
      /// (MarginalLikelihood.startingPoints).
      StartCandidates: int }

/// The exact log p(x) = log ∫ p(x|z) p(z) dz of a model with few latent dimensions, by the trapezoid rule on a regular
/// grid in the posterior's whitened coordinates: the ground truth against which Appendix D's estimate and the
/// importance-weighted bound (section 7 of the spec) are measured.
[<RequireQualifiedAccess>]
module Quadrature =

    /// The largest latent dimension integrated: the grid has n^J points.
    let maxLatent = 3

    /// 0.01 nats per datapoint; a first grid of spacing 1 on [-5, 5]^J in posterior standard deviations.
    let defaults =
        { Tolerance = 0.01; Spacing = 1.0; HalfWidth = 5.0; BoundaryMass = 1e-4; MaxPoints = 1_000_000; Placements = 12
          MaxModes = 8; StartCandidates = 200 }

    /// The points of a regular grid of spacing h on [-r, r]^J (2 round(r/h) + 1 per dimension): [n^J; J], float64.
    let grid (j: int) (h: float) (r: float) : Tensor =
        let half = int64 (Math.Round(r / h))
        let axis = Torch.timesNumber (torch.arange(-half, half + 1L, dtype = torch.float64)) h
        if j = 1 then axis.unsqueeze(1L) else torch.cartesian_prod(Array.replicate j axis)

    /// Points per dimension of grid j h r.
    let private perDimension (h: float) (r: float) = 2.0 * Math.Round(r / h) + 1.0

    /// Grid points per chunk for B datapoints of D values: a chunk's decoder output stays near 4 million values.
    let private chunkOf (b: int64) (d: int64) = max 1L (4_000_000L / max 1L (b * d))

    /// log p(x_b, c_b + L_b u) [G; B] (float64) for grid points u [G; J], centres c [B; J] and lower-triangular factors
    /// L [B; J; J] (float64); logJoint maps z [G; B; J] of the model's dtype to [G; B].
    let private logIntegrand (logJoint: Tensor -> Tensor) (dtype: torch.ScalarType) (c: Tensor) (l: Tensor) (u: Tensor) : Tensor =
        let z = c.unsqueeze(0L).add(torch.einsum("bkj,gj->gbk", l, u), Torch.one)
        (logJoint (z.to_type(dtype))).to_type(torch.float64)

    /// Places each datapoint's grid on its posterior's mass: from centres c [B; J] and scales s [B; J] (the grid's
    /// axes), passes of a grid of spacing 0.75 on [-3, 3]^J recentre it on the posterior's mean and rescale it by the
    /// Cholesky factor of its covariance (both in the grid's coordinates), until the mean lies within half a unit and the
    /// covariance's eigenvalues within [0.5, 2]. A posterior narrower than the spacing (one point holds over half the
    /// mass) is recentred on that point with the axes shrunk fourfold. Returns the centres [B; J], the factors L
    /// [B; J; J] (float64) and which datapoints settled [B].
    let place (c: QuadratureConfig) (logJoint: Tensor -> Tensor) (dtype: torch.ScalarType) (centre: Tensor) (scale: Tensor) (d: int64) : Tensor * Tensor * Tensor =
        use _ = torch.no_grad ()
        let j = centre.shape.[1]
        let u = grid (int j) 0.75 3.0
        let eye = torch.eye(j, dtype = torch.float64)
        let mutable centre = centre.to_type(torch.float64)
        let mutable l = torch.diag_embed(scale.to_type(torch.float64))
        let mutable settled = torch.zeros([| centre.shape.[0] |], dtype = torch.ScalarType.Bool)
        let mutable pass = 0
        while pass < c.Placements && not (settled.all().ToBoolean()) do
            use scope = torch.NewDisposeScope()
            let chunk = chunkOf centre.shape.[0] d
            let lw =
                torch.cat([| for s in 0L .. chunk .. u.shape.[0] - 1L ->
                                 logIntegrand logJoint dtype centre l (u.narrow(0L, s, min chunk (u.shape.[0] - s))) |], 0L)
            let w = lw.softmax(0L)                                                       // [G; B]
            let mean = w.t().matmul(u)                                                  // [B; J]
            let diff = u.unsqueeze(1L) - mean.unsqueeze(0L)                             // [G; B; J]
            let cov = torch.einsum("gb,gbi,gbk->bik", w, diff, diff)                    // [B; J; J]
            let narrow = w.amax([| 0L |]).gt(Torch.constant 0.5)
            let eig = torch.linalg.eigvalsh(cov)
            let settledNow =
                narrow.logical_not()
                    .logical_and(mean.abs().amax([| 1L |]).lt(Torch.constant 0.5))
                    .logical_and(eig.amin([| 1L |]).gt(Torch.constant 0.5))
                    .logical_and(eig.amax([| 1L |]).lt(Torch.constant 2.0))
            let best = u.index_select(0L, lw.argmax(0L))                                // [B; J]
            let along (v: Tensor) = l.matmul(v.unsqueeze(-1L)).squeeze(-1L)
            // The ridge keeps the factor invertible where few points carry the mass.
            let wide = l.matmul(torch.linalg.cholesky(cov.add(Torch.timesNumber eye 1e-3, Torch.one)))
            let n = narrow.view(-1L, 1L)
            centre <- torch.where(n, centre.add(along best, Torch.one), centre.add(along mean, Torch.one)).MoveToOuterDisposeScope()
            l <- torch.where(n.unsqueeze(-1L), Torch.timesNumber l 0.25, wide).MoveToOuterDisposeScope()
            settled <- settledNow.MoveToOuterDisposeScope()
            pass <- pass + 1
        centre, l, settled

    /// The trapezoid rule on grids placed at centres c [B; J] with factors L [B; J; J]: log Σ_u p(x, c + L u) h^J |L| over
    /// u on [-c.HalfWidth, c.HalfWidth]^J, the spacing h starting at c.Spacing and halving at each level until each
    /// datapoint's estimate changes by less than c.Tolerance from the level before. A datapoint with more than
    /// c.BoundaryMass of its integral on the grid's outermost shell has its axes L widened 2.5-fold (a tail far heavier than the first grid saw), and is judged
    /// again only after a halving with the new axes. logJointOf rows gives log p(x, z) for the datapoints at those row
    /// indices (z [G; R; J] of the model's dtype -> [G; R]). Returns the estimates [B] and each one's last change [B]
    /// (float64; +∞ where the last level did not compare).
    let integrate (c: QuadratureConfig) (logJointOf: Tensor -> (Tensor -> Tensor)) (dtype: torch.ScalarType) (centre: Tensor) (l: Tensor) (d: int64) : Tensor * Tensor =
        use _ = torch.no_grad ()
        let b, j = centre.shape.[0], int centre.shape.[1]
        let r = c.HalfWidth
        let mutable l = l.clone()
        let mutable estimates = Torch.filled [| b |] Double.NaN torch.float64
        let mutable change = Torch.filled [| b |] Double.PositiveInfinity torch.float64
        // Whether a datapoint's last estimate was made with its current axes at twice the current spacing.
        let mutable comparable = torch.zeros([| b |], dtype = torch.ScalarType.Bool)
        let mutable active = torch.arange(b, dtype = torch.int64)
        let mutable h = c.Spacing
        while active.numel() > 0L && Math.Pow(perDimension h r, float j) <= float c.MaxPoints do
            use scope = torch.NewDisposeScope()
            let u = grid j h r
            let shell = u.abs().amax([| 1L |]).ge(Torch.constant (r - h / 2.0))
            let logJoint = logJointOf active
            let ca, la = centre.index_select(0L, active), l.index_select(0L, active)
            let chunk = chunkOf active.shape.[0] d
            // Log-sum-exp per chunk, over all points and over the shell's, then over the chunks: memory stays bounded.
            let parts =
                [| for s in 0L .. chunk .. u.shape.[0] - 1L do
                       use _ = torch.NewDisposeScope()
                       let n = min chunk (u.shape.[0] - s)
                       let lw = logIntegrand logJoint dtype ca la (u.narrow(0L, s, n))
                       let onShell = lw.masked_fill(shell.narrow(0L, s, n).logical_not().unsqueeze(1L), Torch.constant Double.NegativeInfinity)
                       yield struct (lw.logsumexp(0L).MoveToOuterDisposeScope(), onShell.logsumexp(0L).MoveToOuterDisposeScope()) |]
            let total = torch.stack([| for struct (t, _) in parts -> t |]).logsumexp(0L)
            let onShell = torch.stack([| for struct (_, s) in parts -> s |]).logsumexp(0L)
            let est = (Torch.plusNumber total (float j * Math.Log h)).add(la.diagonal(0L, 1L, 2L).abs().log().sum(-1L), Torch.one)
            let heavy = (onShell - total).gt(Torch.constant (Math.Log c.BoundaryMass))
            let compared = comparable.index_select(0L, active).logical_and(heavy.logical_not())
            let delta = torch.where(compared, (est - estimates.index_select(0L, active)).abs(), Torch.filled est.shape Double.PositiveInfinity est.dtype)
            estimates <- estimates.index_copy(0L, active, est).MoveToOuterDisposeScope()
            change <- change.index_copy(0L, active, delta).MoveToOuterDisposeScope()
            l <- l.index_copy(0L, active, torch.where(heavy.view(-1L, 1L, 1L), Torch.timesNumber la 2.5, la)).MoveToOuterDisposeScope()
            comparable <- comparable.index_copy(0L, active, heavy.logical_not()).MoveToOuterDisposeScope()
            active <- active.index_select(0L, delta.ge(Torch.constant c.Tolerance).nonzero().squeeze(1L)).MoveToOuterDisposeScope()
            h <- h / 2.0
        estimates, change

    /// Spacing of the coarse search grid on [-5, 5]^J that ofModel's first centres come from, beside draws of q and the
    /// prior: a posterior mode in the prior's tail that neither finds (a test image the encoder maps elsewhere).
    let private searchSpacing (j: int) = match j with 1 -> 0.05 | 2 -> 0.1 | _ -> 0.4

    /// The coarse search grid's points u [G; J] and log p(x, u) [G; B] (float64). logJoint maps z [G; B; J] of the
    /// model's dtype to [G; B].
    let private search (logJoint: Tensor -> Tensor) (dtype: torch.ScalarType) (b: int64) (j: int) (d: int64) : Tensor * Tensor =
        let u = grid j (searchSpacing j) 5.0
        let chunk = chunkOf b d
        let parts =
            [| for s in 0L .. chunk .. u.shape.[0] - 1L do
                   use scope = torch.NewDisposeScope()
                   let uc = u.narrow(0L, s, min chunk (u.shape.[0] - s))
                   yield (logJoint (uc.unsqueeze(1L).expand(-1L, b, -1L).to_type(dtype))).to_type(torch.float64).MoveToOuterDisposeScope() |]
        u, torch.cat(parts, 0L)

    /// Whether latent points z [G; R; J] lie inside each row's grid (within halfWidth of centre [R; J] in the
    /// coordinates of L [R; J; J]): [G; R].
    let private inside (centre: Tensor) (l: Tensor) (halfWidth: float) (z: Tensor) : Tensor =
        let diff = z.to_type(torch.float64) - centre.unsqueeze(0L)
        let whitened = torch.linalg.solve_triangular(l.unsqueeze(0L), diff.unsqueeze(-1L), upper = false).squeeze(-1L)
        whitened.abs().amax([| -1L |]).le(Torch.constant halfWidth)

    /// The log of the search grid's crude integral (its points times their cell) over the points outside each datapoint's
    /// final grid (more than halfWidth from centre c in the coordinates of L): [B]. Mass there is another mode.
    let private massOutside (u: Tensor) (lw: Tensor) (centre: Tensor) (l: Tensor) (halfWidth: float) : Tensor =
        let within = inside centre l halfWidth (u.unsqueeze(1L).expand(-1L, centre.shape.[0], -1L))   // [G; B]
        Torch.plusNumber (lw.masked_fill(within, Torch.constant Double.NegativeInfinity).logsumexp(0L)) (float u.shape.[1] * Math.Log(searchSpacing (int u.shape.[1])))

    /// One axis-aligned box per datapoint spanning every body of mass the search grid sees (its points within 14 nats of
    /// its best, padded by one spacing): the box's centre [B; J] and a diagonal factor [B; J; J] that maps
    /// [-halfWidth, halfWidth]^J onto it.
    let private span (u: Tensor) (lw: Tensor) (halfWidth: float) : Tensor * Tensor =
        let s = searchSpacing (int u.shape.[1])
        let seen = lw.ge(Torch.plusNumber (lw.amax([| 0L |], keepdim = true)) (-14.0))             // [G; B]
        let far = Torch.constant 1e9
        let pts = u.unsqueeze(1L).expand(-1L, lw.shape.[1], -1L)                                   // [G; B; J]
        let lo = Torch.plusNumber (pts.masked_fill(seen.logical_not().unsqueeze(-1L), far).amin([| 0L |])) (-s)
        let hi = Torch.plusNumber (pts.masked_fill(seen.logical_not().unsqueeze(-1L), Torch.constant -1e9).amax([| 0L |])) s
        Torch.overNumber (lo.add(hi, Torch.one)) 2.0, torch.diag_embed(Torch.overNumber (hi - lo) (2.0 * halfWidth))

    /// logMarginal's work at one depth: a grid on the largest body of mass left, then (recursively) the next, with
    /// reference the log of the integral found so far per datapoint.
    let rec private modes (depth: int) (reference: Tensor) (c: QuadratureConfig) (logJoint: Tensor -> Tensor) (logJointOf: Tensor -> (Tensor -> Tensor))
                          (q: Distributions.DiagonalGaussian) (dtype: torch.ScalarType) (d: int64) (g: torch.Generator) : Tensor * Tensor =
        let b, j = q.Mean.shape.[0], int q.Mean.shape.[1]
        let drawn = MarginalLikelihood.startingPoints logJoint q c.StartCandidates g
        let drawnValue = (logJoint (drawn.unsqueeze(0L))).squeeze(0L).to_type(torch.float64)
        let u, lw = search logJoint dtype b j d
        let struct (searchedValue, index) = lw.max(0L)
        let searched = u.index_select(0L, index)
        let fromSearch = searchedValue.gt(drawnValue).unsqueeze(1L)
        let first = torch.where(fromSearch, searched.to_type(dtype), drawn)
        // The grid's first axes: q's standard deviations (at most 1), or the search grid's spacing where it won.
        let qScale = (Torch.timesNumber q.LogVar 0.5).exp().clamp_max(Torch.constant 1.0).to_type(torch.float64)
        let scale = torch.where(fromSearch, Torch.filled qScale.shape (searchSpacing j) qScale.dtype, qScale)
        // A grid that moment matching did not settle (a skewed or curved posterior) is still judged by the refinement,
        // its outermost shell and the search grid's view of the mass beside it.
        let centre, l, _ = place c logJoint dtype first scale d
        let est, change = integrate c logJointOf dtype centre l d
        // Where the search grid sees another mode beside this grid, holding more than half the tolerance's share of the
        // integral, that mode is integrated as well, with this grid's region taken out of the integrand, and added.
        // The coarse grid overstates a peak narrower than its cells: where this grid, placed on what it saw, holds a
        // negligible share of the integral found so far (reference), the search is over.
        let share = Math.Log(c.Tolerance / 2.0)
        let others = (massOutside u lw centre l c.HalfWidth - est).ge(Torch.constant share).logical_and((est - reference).ge(Torch.constant share))
        let rows = others.nonzero().squeeze(1L)
        if rows.numel() = 0L then est, change
        elif depth >= c.MaxModes then est, torch.where(others, Torch.filled change.shape Double.PositiveInfinity change.dtype, change)
        else
            let without (sub: Tensor) (f: Tensor -> Tensor) (z: Tensor) =
                f(z).to_type(torch.float64).masked_fill(inside (centre.index_select(0L, sub)) (l.index_select(0L, sub)) c.HalfWidth z, Torch.constant Double.NegativeInfinity)
            let q' : Distributions.DiagonalGaussian = { Mean = q.Mean.index_select(0L, rows); LogVar = q.LogVar.index_select(0L, rows) }
            let rest, restChange =
                modes (depth + 1) (torch.stack([| reference.index_select(0L, rows); est.index_select(0L, rows) |]).logsumexp(0L)) c (without rows (logJointOf rows)) (fun r -> without (rows.index_select(0L, r)) (logJointOf (rows.index_select(0L, r)))) q' dtype d g
            let total = torch.stack([| est.index_select(0L, rows); rest |]).logsumexp(0L)
            let both = torch.maximum(change.index_select(0L, rows), restChange)
            est.index_copy(0L, rows, total), change.index_copy(0L, rows, both)

    /// The exact log p(x) for B datapoints of any model with J ≤ maxLatent: logJoint maps z [G; B; J] of dtype to
    /// log p(x, z) [G; B] and logJointOf rows does so for the datapoints at those row indices; q (means and log-variances
    /// [B; J]) is a proposal such as the encoder's q(z|x). The grid starts at the best, by log p(x, z), of
    /// c.StartCandidates draws from q and from the prior and of a coarse search grid on [-5, 5]^J, is placed on the
    /// posterior's mass and refined to c.Tolerance. Where the search grid sees another mode beside the grid, that mode
    /// gets a grid of its own over the integrand with the first grid's region taken out, and so on (c.MaxModes at most).
    /// Returns the estimates [B] and each one's last change [B] (float64); a change of c.Tolerance or more means the
    /// datapoint did not converge within c.MaxPoints grid points or needs more than c.MaxModes grids, and its estimate is
    /// not exact.
    let logMarginal (c: QuadratureConfig) (logJoint: Tensor -> Tensor) (logJointOf: Tensor -> (Tensor -> Tensor)) (q: Distributions.DiagonalGaussian)
                    (dtype: torch.ScalarType) (d: int64) (g: torch.Generator) : Tensor * Tensor =
        use _ = torch.no_grad ()
        let j = int q.Mean.shape.[1]
        if j > maxLatent then invalidArg "q" (sprintf "exact quadrature integrates over at most %d latent dimensions, got J = %d" maxLatent j)
        let est, change = modes 1 (Torch.filled [| q.Mean.shape.[0] |] Double.NegativeInfinity torch.float64) c logJoint logJointOf q dtype d g
        // Where the grids per body did not settle (narrow bodies beside each other: the later grids integrate a function
        // with the earlier grids' regions cut out), one grid over a box spanning every body the search grid sees, whose
        // integrand is smooth, is tried instead, and kept where it converges.
        let rows = change.ge(Torch.constant c.Tolerance).nonzero().squeeze(1L)
        if rows.numel() = 0L then est, change
        else
            let u, lw = search logJoint dtype q.Mean.shape.[0] (int q.Mean.shape.[1]) d
            let spanCentre, spanL = span u lw c.HalfWidth
            let sub (t: Tensor) = t.index_select(0L, rows)
            let spanned, spannedChange = integrate c (fun r -> logJointOf (rows.index_select(0L, r))) dtype (sub spanCentre) (sub spanL) d
            let better = spannedChange.lt(sub change)
            est.index_copy(0L, rows, torch.where(better, spanned, sub est)), change.index_copy(0L, rows, torch.where(better, spannedChange, sub change))

    /// The exact log p(x) per datapoint of a VAE's generative model over data [N; D] (J ≤ maxLatent), in batches of 100
    /// (logMarginal with the encoder's q(z|x) as the proposal). Returns the estimates [N] and each one's last change [N].
    let ofModel (c: QuadratureConfig) (m: VaeModel) (data: Tensor) (g: torch.Generator) : Tensor * Tensor =
        if m.Config.LatentDim > maxLatent then
            invalidArg "m" (sprintf "exact quadrature integrates over at most %d latent dimensions; this model has J = %d (use the importance-weighted or Appendix D's estimate)" maxLatent m.Config.LatentDim)
        use _ = torch.no_grad ()
        let n, d = data.shape.[0], data.shape.[1]
        let parts =
            [| for start in 0L .. 100L .. n - 1L do
                   use _ = torch.NewDisposeScope()
                   let x = data.narrow(0L, start, min 100L (n - start))
                   let logJointOf (rows: Tensor) = ImportanceWeighted.logJointForEvaluation m (x.index_select(0L, rows))
                   let est, change = logMarginal c (ImportanceWeighted.logJointForEvaluation m x) logJointOf (VaeModel.encode m x) m.Config.DType d g
                   yield struct (est.MoveToOuterDisposeScope(), change.MoveToOuterDisposeScope()) |]
        torch.cat([| for struct (e, _) in parts -> e |], 0L), torch.cat([| for struct (_, ch) in parts -> ch |], 0L)
