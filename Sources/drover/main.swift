import Drover

Drover.main()
