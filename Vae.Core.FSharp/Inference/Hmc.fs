namespace Vae.Core

open System
open TorchSharp

/// Settings of Hamiltonian (hybrid) Monte Carlo as the paper uses it (Appendix E).
type HmcConfig =
    { /// Leapfrog steps per proposal (the paper: 10 in MCEM, 4 in the Appendix D estimator).
      LeapfrogSteps: int
      /// Acceptance rate the step size is tuned towards (the paper: 0.9).
      TargetAcceptance: float
      /// Largest factor by which one adaptation multiplies or divides the step size (the paper's code:
      /// 1.02 to the power of the number of chains; capped here).
      MaxAdaptFactor: float
      /// Flip the sign of each chain's step size at random (as the paper's code does).
      RandomSign: bool }

/// The outcome of one HMC transition of a batch of chains.
type HmcStep =
    { /// Positions after the transition [C; J].
      Positions: Tensor
      /// log density at the new positions [C].
      LogDensity: Tensor
      /// Which chains accepted their proposal [C] (bool).
      Accepted: Tensor
      /// Fraction of chains that accepted.
      AcceptRate: float
      /// The step size for the next transition (adapted when asked).
      StepSize: float }

/// Hamiltonian Monte Carlo over any differentiable log-density of a batch of chains
/// (logDensity: [C; J] -> [C]); gradients by autodiff.
[<RequireQualifiedAccess>]
module Hmc =

    // Numbers as cached Scalars and additions with an explicit alpha (Torch.one): see Torch.one.
    let private half = Torch.constant 0.5
    let private one = Torch.one

    /// The paper's MCEM settings: 10 leapfrog steps, target acceptance 0.9, random signs.
    let paper = { LeapfrogSteps = 10; TargetAcceptance = 0.9; MaxAdaptFactor = 1.25; RandomSign = true }

    /// The log-density of each chain and its gradient with respect to the positions (both detached). Every other
    /// tensor of the evaluation, and with them the autograd graph they own, is disposed here: only the two results
    /// reach the caller's dispose scope.
    let valueAndGradient (logDensity: Tensor -> Tensor) (z: Tensor) : Tensor * Tensor =
        use _ = torch.NewDisposeScope()
        use _ = torch.enable_grad ()
        let z = z.detach().requires_grad_(true)
        let v = logDensity z
        let g = torch.autograd.grad([| v.sum() |], [| z |]).[0]
        v.detach().MoveToOuterDisposeScope(), g.detach().MoveToOuterDisposeScope()

    /// The leapfrog integrator: steps of size eps ([C; 1] per chain, or a scalar tensor) from (z, p),
    /// given the log density's gradient at z, with half steps of the momentum at both ends.
    /// Time-reversible and volume-preserving. Returns (z, p, log density at z, its gradient).
    let leapfrogFrom (logDensity: Tensor -> Tensor) (z: Tensor) (gradient: Tensor) (p: Tensor) (eps: Tensor) (steps: int) =
        let mutable p = p.add(eps.mul(half) * gradient, one)
        let mutable z = z
        let mutable last = Unchecked.defaultof<Tensor * Tensor>
        for i in 1 .. steps do
            z <- z.add(eps * p, one)
            last <- valueAndGradient logDensity z
            p <- p.add((if i < steps then eps else eps.mul(half)) * snd last, one)
        z, p, fst last, snd last

    /// leapfrogFrom with the gradient at z computed here.
    let leapfrog (logDensity: Tensor -> Tensor) (z: Tensor) (p: Tensor) (eps: Tensor) (steps: int) =
        leapfrogFrom logDensity z (snd (valueAndGradient logDensity z)) p eps steps

    /// One HMC transition of every chain with per-chain step sizes eps [C; 1] (signs flipped at random
    /// when asked): a fresh momentum, a leapfrog trajectory, a Metropolis correction per chain. A
    /// non-finite proposal is rejected. Returns (positions, log density, accepted [C] bool).
    let transition (c: HmcConfig) (logDensity: Tensor -> Tensor) (z: Tensor) (eps: Tensor) (g: torch.Generator) : Tensor * Tensor * Tensor =
        if c.LeapfrogSteps < 1 then invalidArg (nameof c) "HMC needs at least one leapfrog step"
        let chains = z.shape.[0]
        let p0 = torch.randn(z.shape, dtype = z.dtype, generator = g)
        let eps =
            if c.RandomSign then eps * torch.randint(0L, 2L, [| chains; 1L |], dtype = z.dtype, generator = g).mul(Torch.constant 2.0).sub(one)
            else eps
        let logP0, g0 = valueAndGradient logDensity z
        let z1, p1, logP1, _ = leapfrogFrom logDensity z g0 p0 eps c.LeapfrogSteps
        let h0 = (-logP0).add((p0 * p0).sum(-1L).mul(half), one)
        let h1 = (-logP1).add((p1 * p1).sum(-1L).mul(half), one)
        let logU = torch.rand([| chains |], dtype = z.dtype, generator = g).log()
        let accepted = (logU.lt(h0 - h1)).logical_and(h1.isfinite())
        torch.where(accepted.unsqueeze(-1L), z1, z), torch.where(accepted, logP1, logP0), accepted

    /// The shared step size after a transition of C chains with acceptance rate rate: multiplied (at or
    /// above the target) or divided (below) by min(MaxAdaptFactor, 1.02^C), as in the paper's code.
    let adaptShared (c: HmcConfig) (chains: int64) (rate: float) (stepSize: float) : float =
        let factor = min c.MaxAdaptFactor (Math.Pow(1.02, float chains))
        if rate < c.TargetAcceptance then stepSize / factor else stepSize * factor

    /// One HMC transition of every chain with one step size, adapted by adaptShared when asked.
    let step (c: HmcConfig) (adapt: bool) (logDensity: Tensor -> Tensor) (z: Tensor) (stepSize: float) (g: torch.Generator) : HmcStep =
        let chains = z.shape.[0]
        let eps = Torch.filled [| chains; 1L |] stepSize z.dtype
        let positions, logDensityNew, accepted = transition c logDensity z eps g
        let rate = accepted.to_type(torch.float64).mean().ToDouble()
        let next = if adapt then adaptShared c chains rate stepSize else stepSize
        { Positions = positions; LogDensity = logDensityNew; Accepted = accepted; AcceptRate = rate; StepSize = next }

    /// Per-chain adaptation of step sizes eps [C; 1] after a transition: an accepting chain's step grows
    /// by 1.02, a rejecting chain's shrinks by 1.02^(t / (1 - t)) for target t, so that each chain's step
    /// size settles where its own acceptance rate is about t (chains whose posteriors differ in width
    /// each find their own scale).
    let adaptPerChain (c: HmcConfig) (eps: Tensor) (accepted: Tensor) : Tensor =
        let up = 1.02
        let down = Math.Pow(up, c.TargetAcceptance / (1.0 - c.TargetAcceptance))
        torch.where(accepted.unsqueeze(-1L), eps.mul(Torch.constant up), eps.div(Torch.constant down))
