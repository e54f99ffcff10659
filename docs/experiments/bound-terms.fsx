// The lower bound of MNIST models split into its two terms (Appendix B), E_q[log p(x|z)] - KL(q(z|x) || p(z)), on the
// test images, on them binarised by Bernoulli draws (the fantasies' kind of pixels) and on the model's own fantasies
// (z ~ p(z), x ~ p(x|z): the data wake-sleep's sleep phase trains the encoder on), with the active latent dimensions
// (Burda et al. 2015: Var_x E_q[z_u] above 0.01) and their share of the KL.
//   dotnet fsi docs/experiments/bound-terms.fsx -- run-a/checkpoint.safetensors run-b/checkpoint.safetensors ...
#load "references.fsx"
open TorchSharp
open Vae.Core
open Vae.Core.Data
Torch.setThreads 1
NativeTuning.configureMkl () |> ignore
let files = fsi.CommandLineArgs |> Array.skip 1 |> Array.filter ((<>) "--")
let mnist = Mnist.load DataOptions.Default |> Mnist.paperSplit
let test = Torch.ofArray2 mnist.Test.Count mnist.Test.Dimension mnist.Test.Pixels

/// Per-datapoint means over data x [N; D] in batches of 1000: reconstruction term (one draw of z per image), KL per
/// latent dimension, and the encoder's means (for the active-unit count).
let terms (m: VaeModel) (x: Tensor) (g: torch.Generator) =
    use _ = torch.no_grad ()
    let n = x.shape.[0]
    let parts =
        [ for start in 0L .. 1000L .. n - 1L do
              let xb = x.narrow(0L, start, min 1000L (n - start))
              let q = VaeModel.encode m xb
              let eps = torch.randn(q.Mean.shape, dtype = q.Mean.dtype, generator = g)
              let recon = VaeModel.logLikelihood m (Distributions.reparameterise q eps) xb
              // Appendix B's KL per latent dimension: each dimension as a one-dimensional Gaussian.
              let kl = Distributions.klToStandardNormal { Mean = q.Mean.unsqueeze(-1L); LogVar = q.LogVar.unsqueeze(-1L) }
              yield recon.sum().ToDouble(), kl.sum(0L), q.Mean ]
    let recon = (parts |> List.sumBy (fun (r, _, _) -> r)) / float n
    let klPerDim = (parts |> List.map (fun (_, k, _) -> k) |> List.reduce (+)) / float n
    let means = torch.cat([| for (_, _, mu) in parts -> mu |], 0L)
    recon, klPerDim, means.var(0L)

for file in files do
    use _ = torch.NewDisposeScope()
    let m = ModelCheckpoint.read file (Checkpoint.load file)
    let g = Torch.generator 0L
    let activeOn (var: Tensor) = var.gt(Torch.constant 0.01)
    let recon, kl, var = terms m test g
    let active = activeOn var
    let activeKl = kl.masked_select(active).sum().ToDouble()
    let zp = torch.randn([| 10000L; int64 m.Config.LatentDim |], generator = g)
    let xp = Torch.noGrad (fun () -> VaeModel.sampleData m zp g)
    let fRecon, fKl, fVar = terms m xp g
    printfn "%s (J = %d)" file m.Config.LatentDim
    printfn "  test:       bound %8.2f = reconstruction %8.2f - KL %6.2f; %3d active dimensions carry KL %6.2f, the other %3d carry %5.2f"
        (recon - kl.sum().ToDouble()) recon (kl.sum().ToDouble()) (active.sum().ToInt32()) activeKl
        (m.Config.LatentDim - active.sum().ToInt32()) (kl.sum().ToDouble() - activeKl)
    let xb = torch.bernoulli(test, generator = g)
    let bRecon, bKl, bVar = terms m xb g
    printfn "  binarised:  bound %8.2f = reconstruction %8.2f - KL %6.2f; %3d active dimensions"
        (bRecon - bKl.sum().ToDouble()) bRecon (bKl.sum().ToDouble()) (activeOn(bVar).sum().ToInt32())
    printfn "  fantasies:  bound %8.2f = reconstruction %8.2f - KL %6.2f; %3d active dimensions"
        (fRecon - fKl.sum().ToDouble()) fRecon (fKl.sum().ToDouble()) (activeOn(fVar).sum().ToInt32())
