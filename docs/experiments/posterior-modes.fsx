// The exact log p(x) of training image 38 of the Figure 3 N = 50,000 AEVB model at step size 0.02, which the
// quadrature once refused (issue 31, item 3): its posterior has two narrow modes, and q(z|x) sits on neither. log p(x, z)
// is summed by brute force on two boxes of +-0.6 around the modes a 0.2-spaced grid over [-6, 6]^3 found (they hold
// ~96 % of the mass) and on one box over both and around them (spacings 0.04 and 0.02 agree), beside q(z|x), the
// importance-weighted bound with K = 5000 and Quadrature.ofModel with 1 to 8 grids per body.
//   dotnet fsi docs/experiments/posterior-modes.fsx     (output: docs/experiments/posterior-modes.txt)
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open TorchSharp
open Vae.Core
open Vae.Core.Data
Torch.setThreads 1
let path = System.IO.Path.Combine(__SOURCE_DIRECTORY__, "../../models/figure3-ntrain50000-conventions/aevb-step0.02.safetensors")
let m = ModelCheckpoint.read path (Checkpoint.load path)
let mnist = Mnist.load DataOptions.Default
let x = Torch.ofArray2 1 784 (Images.slice 38 1 mnist.Train).Pixels
let noGrad = torch.no_grad ()
let box (c: float[]) (half: float) (h: float) =
    let axis k = torch.arange(c.[k] - half, c.[k] + half + h / 2.0, h, dtype = torch.float32)
    let z = torch.cartesian_prod([| axis 0; axis 1; axis 2 |])
    let lj = torch.cat([| for i in 0L .. 50000L .. z.shape.[0] - 1L -> VaeModel.logJoint m x (z.narrow(0L, i, min 50000L (z.shape.[0] - i)).unsqueeze(1L)) |], 0L).squeeze(1L).to_type(torch.float64)
    let w = (lj - lj.logsumexp(0L)).exp()
    let zd = z.to_type(torch.float64)
    let mean = (w.unsqueeze(1L) * zd).sum(0L)
    let sd = ((w.unsqueeze(1L) * (zd - mean) * (zd - mean)).sum(0L)).sqrt()
    // mass on the box's outer shell (any coordinate within h of the edge)
    let edge = ((zd - torch.tensor(c, dtype = torch.float64)).abs().amax([| 1L |]).gt(Torch.scalar (half - 1.5 * h))).to_type(torch.float64)
    lj.logsumexp(0L).item<double>() + 3.0 * log h, mean.data<double>().ToArray(), sd.data<double>().ToArray(), (w * edge).sum().item<double>()
let q = VaeModel.encode m x
printfn "q(z|x): mean %A, sd %A" (q.Mean.data<float32>().ToArray()) ((q.LogVar * 0.5f).exp().data<float32>().ToArray())
let iwae = [| for s in 0L .. 4L -> (ImportanceWeighted.bound m x 5000 1000 (Torch.generator s)).item<float32>() |]
printfn "importance-weighted bound, K = 5000, five draws: %A" iwae
for h in [0.04; 0.02] do
    let a, ma, sa, ea = box [| -0.7; 1.25; 0.6 |] 0.6 h
    let b, mb, sb, eb = box [| 0.8; 1.7; 0.8 |] 0.6 h
    let total = log (exp (a - a) + exp (b - a)) + a
    printfn "h %.2f: mode A log mass %.4f mean %A sd %A edge %.2e | mode B %.4f mean %A sd %A edge %.2e | log p(x) %.4f (A share %.3f)" h a ma sa ea b mb sb eb total (exp (a - total))
// One box over both modes and the region between and around them, +-1.2 beyond the modes' centres on every axis.
let wideBox (h: float) =
    let axis lo hi = torch.arange(lo, hi + h / 2.0, h, dtype = torch.float32)
    let z = torch.cartesian_prod([| axis -1.9 2.0; axis 0.0 2.9; axis -0.6 2.0 |])
    let parts = [| for i in 0L .. 20000L .. z.shape.[0] - 1L ->
                     use _ = torch.NewDisposeScope()
                     (VaeModel.logJoint m x (z.narrow(0L, i, min 20000L (z.shape.[0] - i)).unsqueeze(1L))).to_type(torch.float64).logsumexp(0L).MoveToOuterDisposeScope() |]
    torch.cat(parts, 0L).logsumexp(0L).item<double>() + 3.0 * log h
for h in [0.04; 0.02] do printfn "one box [-1.9, 2.0] x [0.0, 2.9] x [-0.6, 2.0], h %.2f: log p(x) %.4f" h (wideBox h)
// The quadrature itself (Quadrature.ofModel, the defaults but MaxModes), for comparison with the sum above.
for modes in [1; 2; 3; 8] do
    let est, change = Quadrature.ofModel { Quadrature.defaults with MaxModes = modes } m x (Torch.generator 0L)
    printfn "Quadrature.ofModel, MaxModes %d: estimate %.4f, last change %g" modes (est.item<double>()) (change.item<double>())
